import type { ClientBase } from 'pg';
import type { AccountConfig, PgrotateConfig } from '../../core/config/config-schema.js';
import type { Finding, NotChecked, RoleEntry } from '../../core/audit/audit-types.js';

// What every audit check reads and writes: the connection, the config, and the report being
// built; and the helpers checks share (privilege errors, settings).

const INSUFFICIENT_PRIVILEGE = '42501';

export interface AuditInput {
  client: ClientBase;
  config: PgrotateConfig;
  target: string;
  /** last_rotated_at per account name, from the state database. */
  rotatedAt: Map<string, Date | null>;
  now?: Date;
}

export interface AuditContext extends AuditInput {
  admin: { role: string; superuser: boolean };
  /** Managed role → its account. */
  managed: Map<string, AccountConfig>;
  /** Roles with a stored password, when pg_authid is readable (else null: unknown). */
  withPassword: Set<string> | null;
  findings: Finding[];
  notChecked: NotChecked[];
  roles: RoleEntry[];
}

export interface RoleRow {
  oid: number;
  rolname: string;
  rolcanlogin: boolean;
  rolsuper: boolean;
  rolcreaterole: boolean;
  rolcreatedb: boolean;
  rolbypassrls: boolean;
  rolreplication: boolean;
  /** A Date, or the number Infinity for 'infinity' (node-postgres), or null: none. */
  rolvaliduntil: Date | number | null;
  rolconnlimit: number;
}

export function isPrivilegeError(err: unknown): boolean {
  return (err as { code?: string }).code === INSUFFICIENT_PRIVILEGE;
}

/**
 * Run one check; when the admin login may not read what it needs, list `checks` as not checked
 * with PostgreSQL's reason ("permission denied for view pg_roles") instead of failing the audit.
 */
export async function guarded(
  ctx: AuditContext,
  checks: string[],
  needs: string,
  fn: () => Promise<void> | void,
): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!isPrivilegeError(err)) throw err;
    const why = err instanceof Error ? err.message : String(err);
    for (const check of checks)
      ctx.notChecked.push({ check, reason: `${needs}: ${why} (admin login ${ctx.admin.role})` });
  }
}

/** Library names in shared_preload_libraries, lower case. */
export function preloaded(value: string): string[] {
  return value
    .split(',')
    .map((x) => x.trim().replace(/^"|"$/g, '').toLowerCase())
    .filter(Boolean);
}

/** A server setting's current value (current_setting; needs no privilege beyond the function). */
export async function setting(client: ClientBase, name: string): Promise<string> {
  const res = await client.query<{ v: string }>('SELECT current_setting($1) AS v', [name]);
  return res.rows[0]?.v ?? '';
}
