import type { ClientBase } from 'pg';
import { quoteIdent, quoteLiteral } from './quote.js';
import type { RoleProfile, RoleSetting } from './role-profile.js';

// The statements that create the second login of an alternating pair as a copy of the first
// (createTwin). The copy is made in one transaction, so a statement PostgreSQL refuses (a
// setting the admin may not set, a group it may not grant) leaves no half-made role behind.

/** Settings whose value is a list that ALTER ROLE takes as separate literals (PostgreSQL's GUC_LIST_QUOTE). */
const LIST_SETTINGS = new Set([
  'search_path',
  'temp_tablespaces',
  'local_preload_libraries',
  'session_preload_libraries',
  'shared_preload_libraries',
  'unix_socket_directories',
]);

const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)*$/;

/** Split a stored list value (`"$user", public`) into its elements, removing identifier quotes. */
function splitList(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] as string;
    if (quoted) {
      if (ch === '"' && value[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(cur.trim());
  return out;
}

/** `ALTER ROLE <twin> [IN DATABASE d] SET name TO ...` reproducing one stored setting. */
export function settingStatement(twin: string, s: RoleSetting): string {
  const eq = s.entry.indexOf('=');
  const name = s.entry.slice(0, eq);
  const value = s.entry.slice(eq + 1);
  if (eq <= 0 || !SETTING_NAME.test(name)) throw new Error(`cannot copy the setting ${JSON.stringify(name)}`);
  const where = s.database === null ? '' : ` IN DATABASE ${quoteIdent(s.database)}`;
  const values = LIST_SETTINGS.has(name.toLowerCase())
    ? splitList(value).map(quoteLiteral).join(', ')
    : quoteLiteral(value);
  return `ALTER ROLE ${quoteIdent(twin)}${where} SET ${name} TO ${values}`;
}

/** The statements that make `twin` a copy of `first`: a login with no password, the same groups and settings. */
export function twinStatements(first: RoleProfile, twin: string, serverVersion: number): string[] {
  const attrs = [
    'LOGIN',
    first.inherit ? 'INHERIT' : 'NOINHERIT',
    ...(first.createDb ? ['CREATEDB'] : []),
    ...(first.bypassRls ? ['BYPASSRLS'] : []),
    `CONNECTION LIMIT ${Math.trunc(first.connectionLimit)}`,
  ];
  // No PASSWORD: PostgreSQL accepts no password for the twin until pgrotate sets one (I1).
  const out = [`CREATE ROLE ${quoteIdent(twin)} ${attrs.join(' ')}`];
  for (const m of first.memberships) {
    if (m.group === twin) continue;
    const grant = `GRANT ${quoteIdent(m.group)} TO ${quoteIdent(twin)}`;
    if (serverVersion >= 160000) {
      out.push(`${grant} WITH ADMIN ${m.admin}, INHERIT ${m.inherit ?? first.inherit}, SET ${m.set ?? true}`);
    } else out.push(m.admin ? `${grant} WITH ADMIN OPTION` : grant);
  }
  for (const s of first.settings) out.push(settingStatement(twin, s));
  return out;
}

/** Create the twin in one transaction. */
export async function createTwinRole(
  client: ClientBase,
  first: RoleProfile,
  twin: string,
  serverVersion: number,
): Promise<void> {
  const statements = twinStatements(first, twin, serverVersion);
  await client.query('BEGIN');
  try {
    for (const sql of statements) await client.query(sql);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Group roles of `first` the admin may not grant (PostgreSQL 16+ needs ADMIN OPTION on each). */
export async function groupsWithoutAdminOption(client: ClientBase, first: RoleProfile): Promise<string[]> {
  const groups = first.memberships.map((m) => m.group);
  if (groups.length === 0) return [];
  const res = await client.query<{ group: string }>(
    `SELECT g.rolname AS group FROM pg_catalog.pg_roles g
      WHERE g.rolname = ANY($1::text[])
        AND current_setting('server_version_num')::int >= 160000
        AND NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
        AND NOT pg_catalog.pg_has_role(current_user, g.oid, 'MEMBER WITH ADMIN OPTION')
      ORDER BY 1`,
    [groups],
  );
  return res.rows.map((r) => r.group);
}
