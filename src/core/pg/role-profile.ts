import type { ClientBase } from 'pg';

// What makes two login roles interchangeable for applications: the attributes a login uses,
// the group roles it belongs to (with their options on PostgreSQL 16+) and its per-role
// settings. Read for the createTwin copy and for the drift check of every alternating pair.

/** One membership of the role in a group role (options aggregated over grantors). */
export interface RoleMembership {
  group: string;
  admin: boolean;
  /** PostgreSQL 16+ only (null before: the role's own INHERIT attribute decides). */
  inherit: boolean | null;
  /** PostgreSQL 16+ only (null before: always allowed). */
  set: boolean | null;
}

/** One `ALTER ROLE ... [IN DATABASE ...] SET` default, as pg_db_role_setting stores it. */
export interface RoleSetting {
  /** null: every database. */
  database: string | null;
  /** `name=value`, exactly as stored. */
  entry: string;
}

/** The copyable facts of a role. */
export interface RoleProfile {
  name: string;
  superuser: boolean;
  inherit: boolean;
  createDb: boolean;
  createRole: boolean;
  replication: boolean;
  bypassRls: boolean;
  connectionLimit: number;
  memberships: RoleMembership[];
  settings: RoleSetting[];
}

/** The profile of `role`, or null when it does not exist. */
export async function readRoleProfile(client: ClientBase, role: string): Promise<RoleProfile | null> {
  const res = await client.query<{
    rolsuper: boolean;
    rolinherit: boolean;
    rolcreatedb: boolean;
    rolcreaterole: boolean;
    rolreplication: boolean;
    rolbypassrls: boolean;
    rolconnlimit: number;
    memberships: Array<{ group: string; admin: boolean; inherit: boolean | null; set: boolean | null }> | null;
    settings: Array<{ database: string | null; entry: string }> | null;
  }>(
    `SELECT r.rolsuper, r.rolinherit, r.rolcreatedb, r.rolcreaterole, r.rolreplication, r.rolbypassrls, r.rolconnlimit,
            (SELECT json_agg(m ORDER BY m.group) FROM (
               SELECT g.rolname AS group, bool_or(am.admin_option) AS admin,
                      CASE WHEN current_setting('server_version_num')::int >= 160000
                           THEN bool_or((to_jsonb(am) ->> 'inherit_option')::boolean) END AS inherit,
                      CASE WHEN current_setting('server_version_num')::int >= 160000
                           THEN bool_or((to_jsonb(am) ->> 'set_option')::boolean) END AS set
                 FROM pg_catalog.pg_auth_members am JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
                WHERE am.member = r.oid GROUP BY g.rolname) m) AS memberships,
            (SELECT json_agg(json_build_object('database', d.datname, 'entry', e.entry) ORDER BY d.datname NULLS FIRST, e.entry)
               FROM pg_catalog.pg_db_role_setting s
               LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
               CROSS JOIN LATERAL unnest(s.setconfig) AS e(entry)
              WHERE s.setrole = r.oid) AS settings
       FROM pg_catalog.pg_roles r WHERE r.rolname = $1`,
    [role],
  );
  const row = res.rows[0];
  if (!row) return null;
  return {
    name: role,
    superuser: row.rolsuper,
    inherit: row.rolinherit,
    createDb: row.rolcreatedb,
    createRole: row.rolcreaterole,
    replication: row.rolreplication,
    bypassRls: row.rolbypassrls,
    connectionLimit: row.rolconnlimit,
    memberships: row.memberships ?? [],
    settings: row.settings ?? [],
  };
}

/** What the role owns or was granted directly, cluster-wide (pg_shdepend), one line per kind. */
export async function roleHoldings(client: ClientBase, role: string): Promise<string[]> {
  // pg_shdepend records ownership ('o'), ACL entries ('a') and default-privilege entries of a
  // role in every database, so one read covers tables, functions, schemas, types, databases and
  // pg_default_acl wherever they are. Objects of the connected database are named.
  const res = await client.query<{ kind: string; what: string }>(
    `SELECT CASE WHEN s.deptype = 'o' THEN 'owns' ELSE 'has direct grants on' END AS kind,
            CASE WHEN s.dbid = 0 OR s.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
                 THEN pg_catalog.pg_describe_object(s.classid, s.objid, s.objsubid)
                 ELSE 'an object in database ' || coalesce((SELECT datname FROM pg_catalog.pg_database WHERE oid = s.dbid), s.dbid::text) END AS what
       FROM pg_catalog.pg_shdepend s
      WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass
        AND s.refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)
        AND s.deptype IN ('o', 'a', 'i')
      ORDER BY 1, 2`,
    [role],
  );
  const byKind = new Map<string, string[]>();
  for (const r of res.rows) byKind.set(r.kind, [...(byKind.get(r.kind) ?? []), r.what]);
  return [...byKind].map(([kind, what]) => `${kind} ${what.join(', ')}`);
}

/** The attributes that make a login behave differently, in words, for comparisons and messages. */
function attributeWords(p: RoleProfile): string[] {
  return [
    p.inherit ? 'INHERIT' : 'NOINHERIT',
    ...(p.createDb ? ['CREATEDB'] : []),
    ...(p.createRole ? ['CREATEROLE'] : []),
    ...(p.replication ? ['REPLICATION'] : []),
    ...(p.bypassRls ? ['BYPASSRLS'] : []),
    ...(p.superuser ? ['SUPERUSER'] : []),
    `CONNECTION LIMIT ${p.connectionLimit}`,
  ];
}

function membershipWords(m: RoleMembership): string {
  const opts = [
    m.admin ? 'ADMIN' : null,
    m.inherit === false ? 'INHERIT FALSE' : null,
    m.set === false ? 'SET FALSE' : null,
  ].filter(Boolean);
  return `membership in ${JSON.stringify(m.group)}${opts.length > 0 ? ` (${opts.join(', ')})` : ''}`;
}

function settingWords(s: RoleSetting): string {
  return `setting ${s.entry}${s.database === null ? '' : ` in database ${JSON.stringify(s.database)}`}`;
}

/** Every difference between two profiles, each naming the role that has it ([] when they are twins). */
export function profileDifferences(a: RoleProfile, b: RoleProfile): string[] {
  const out: string[] = [];
  const onlyIn = (xs: string[], ys: string[], who: string) => {
    for (const x of xs) if (!ys.includes(x)) out.push(`${x} only on ${JSON.stringify(who)}`);
  };
  const [aa, ba] = [attributeWords(a), attributeWords(b)];
  onlyIn(aa, ba, a.name);
  onlyIn(ba, aa, b.name);
  // A membership of one login in the other (or in itself) is not drift to copy.
  const groups = (p: RoleProfile) =>
    p.memberships.filter((m) => m.group !== a.name && m.group !== b.name).map(membershipWords);
  const [am, bm] = [groups(a), groups(b)];
  onlyIn(am, bm, a.name);
  onlyIn(bm, am, b.name);
  const [as, bs] = [a.settings.map(settingWords), b.settings.map(settingWords)];
  onlyIn(as, bs, a.name);
  onlyIn(bs, as, b.name);
  return out;
}
