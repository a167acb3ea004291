import type { ClientBase } from 'pg';
import { SCRAM_VERIFIER_PATTERN } from '../scram/scram-verifier.js';
import { quoteIdent, quoteLiteral } from './quote.js';

// The statements pgrotate runs against a target as its admin login. Only SCRAM verifiers and
// timestamps are ever interpolated, after checking their shape; role names are quoted.

export interface RoleInfo {
  name: string;
  superuser: boolean;
  canLogin: boolean;
  validUntil: Date | null;
}

/** Look up a role by exact name; null when it does not exist. */
export async function inspectRole(client: ClientBase, role: string): Promise<RoleInfo | null> {
  const res = await client.query<{ rolname: string; rolsuper: boolean; rolcanlogin: boolean; rolvaliduntil: Date | null }>(
    'SELECT rolname, rolsuper, rolcanlogin, rolvaliduntil FROM pg_catalog.pg_roles WHERE rolname = $1',
    [role],
  );
  const row = res.rows[0];
  if (!row) return null;
  return { name: row.rolname, superuser: row.rolsuper, canLogin: row.rolcanlogin, validUntil: row.rolvaliduntil };
}

/**
 * Set a role's password from a precomputed SCRAM verifier. With `validUntil` the same statement
 * also sets the expiry ('infinity' clears an earlier one), so the two never diverge.
 */
export async function setPasswordVerifier(client: ClientBase, role: string, verifier: string, validUntil?: Date | 'infinity'): Promise<void> {
  if (!SCRAM_VERIFIER_PATTERN.test(verifier)) throw new Error('refusing to send something that is not a SCRAM verifier');
  const expiry = validUntil === undefined ? '' : ` VALID UNTIL ${quoteLiteral(validUntil === 'infinity' ? 'infinity' : validUntil.toISOString())}`;
  await client.query(`ALTER ROLE ${quoteIdent(role)} PASSWORD '${verifier}'${expiry}`);
}

/** Remove the role's password, so no password logs it in until it is set again. */
export async function clearPassword(client: ClientBase, role: string): Promise<void> {
  await client.query(`ALTER ROLE ${quoteIdent(role)} PASSWORD NULL`);
}

/** Make the role's password stop working at `at` (PostgreSQL enforces it at login). */
export async function setValidUntil(client: ClientBase, role: string, at: Date): Promise<void> {
  await client.query(`ALTER ROLE ${quoteIdent(role)} VALID UNTIL ${quoteLiteral(at.toISOString())}`);
}

/**
 * End the sessions of `role` other than pgrotate's own connection; returns how many were ended.
 * A new password does not end sessions opened with the old one, so offboarding needs this.
 * A non-superuser admin needs pg_signal_backend (or membership in the role), and sees
 * backend_type as NULL for other roles' sessions, hence the IS NULL.
 */
export async function terminateSessions(client: ClientBase, role: string): Promise<number> {
  const res = await client.query<{ ended: boolean }>(
    `SELECT pg_catalog.pg_terminate_backend(pid) AS ended FROM pg_catalog.pg_stat_activity
      WHERE usename = $1 AND pid <> pg_catalog.pg_backend_pid() AND (backend_type = 'client backend' OR backend_type IS NULL)`,
    [role],
  );
  return res.rows.filter((r) => r.ended).length;
}

/**
 * Why the connected admin may not change `role`'s password, or null when it may. PostgreSQL 15
 * lets any CREATEROLE login alter non-superuser roles; 16 and later also require ADMIN OPTION
 * on the role (granted automatically to the role's creator).
 */
export async function adminCannotAlter(client: ClientBase, role: RoleInfo): Promise<string | null> {
  const me = await client.query<{ rolsuper: boolean; rolcreaterole: boolean; v: number; who: string }>(
    `SELECT rolsuper, rolcreaterole, current_setting('server_version_num')::int AS v, current_user AS who
       FROM pg_catalog.pg_roles WHERE rolname = current_user`,
  );
  const row = me.rows[0];
  if (!row || row.rolsuper) return null;
  if (role.superuser) return `admin login ${row.who} is not a superuser, and only a superuser may change a superuser's password`;
  if (!row.rolcreaterole) return `admin login ${row.who} lacks CREATEROLE`;
  if (row.v >= 160000) {
    const adm = await client.query<{ ok: boolean }>(`SELECT pg_catalog.pg_has_role(current_user, $1, 'MEMBER WITH ADMIN OPTION') AS ok`, [role.name]);
    if (!adm.rows[0]?.ok) {
      return `admin login ${row.who} has no ADMIN OPTION on the role (PostgreSQL 16+): GRANT ${quoteIdent(role.name)} TO ${quoteIdent(row.who)} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`;
    }
  }
  return null;
}
