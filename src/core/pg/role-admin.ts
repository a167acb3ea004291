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
  /** CONNECTION LIMIT (-1: none). */
  connectionLimit: number;
  /** Sessions of the role open now (pg_stat_activity). */
  sessions: number;
}

/**
 * Set a role's password from a precomputed SCRAM verifier. With `validUntil` the same statement
 * also sets the expiry ('infinity' clears an earlier one), so the two never diverge.
 */
export async function setPasswordVerifier(
  client: ClientBase,
  role: string,
  verifier: string,
  validUntil?: Date | 'infinity',
): Promise<void> {
  if (!SCRAM_VERIFIER_PATTERN.test(verifier))
    throw new Error('refusing to send something that is not a SCRAM verifier');
  const expiry =
    validUntil === undefined
      ? ''
      : ` VALID UNTIL ${quoteLiteral(validUntil === 'infinity' ? 'infinity' : validUntil.toISOString())}`;
  await client.query(`ALTER ROLE ${quoteIdent(role)} PASSWORD '${verifier}'${expiry}`);
}

/**
 * Set the connected role's own password from a precomputed SCRAM verifier (`admin: self`). Any
 * login role may do this without CREATEROLE; it may not set its own VALID UNTIL, so none is sent.
 */
export async function setOwnPasswordVerifier(client: ClientBase, verifier: string): Promise<void> {
  if (!SCRAM_VERIFIER_PATTERN.test(verifier))
    throw new Error('refusing to send something that is not a SCRAM verifier');
  await client.query(`ALTER ROLE CURRENT_USER PASSWORD '${verifier}'`);
}

/** The role's VALID UNTIL (null: none, or the role is gone). */
export async function roleValidUntil(client: ClientBase, role: string): Promise<Date | null> {
  const res = await client.query<{ v: unknown }>(
    'SELECT rolvaliduntil AS v FROM pg_catalog.pg_roles WHERE rolname = $1',
    [role],
  );
  return finiteDate(res.rows[0]?.v);
}

/** node-postgres gives 'infinity' timestamps as the number Infinity; pgrotate treats them as "no expiry". */
function finiteDate(v: unknown): Date | null {
  return v instanceof Date && Number.isFinite(v.getTime()) ? v : null;
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
 * End the sessions of `role` other than pgrotate's own connection and `ownPids` (pgrotate's own
 * logins still closing); returns how many were ended.
 * A new password does not end sessions opened with the old one, so offboarding needs this.
 * A non-superuser admin needs pg_signal_backend (or membership in the role), and sees
 * backend_type as NULL for other roles' sessions, hence the IS NULL.
 */
export async function terminateSessions(client: ClientBase, role: string, ownPids: number[] = []): Promise<number> {
  const others = ownPids.length > 0 ? ' AND pid <> ALL($2::int[])' : '';
  const res = await client.query<{ ended: boolean }>(
    `SELECT pg_catalog.pg_terminate_backend(pid) AS ended FROM pg_catalog.pg_stat_activity
      WHERE usename = $1 AND pid <> pg_catalog.pg_backend_pid()${others} AND (backend_type = 'client backend' OR backend_type IS NULL)`,
    ownPids.length > 0 ? [role, ownPids] : [role],
  );
  return res.rows.filter((r) => r.ended).length;
}

/** What the connected admin login is allowed to do, read together with the roles. */
export interface AdminInfo {
  name: string;
  superuser: boolean;
  createRole: boolean;
  serverVersion: number;
  /** Member of pg_signal_backend (or superuser): may end other roles' sessions. */
  canSignal: boolean;
}

export interface RoleAccess {
  admin: AdminInfo;
  /** Each requested role that exists, with whether the admin holds ADMIN OPTION on it. */
  roles: Map<string, RoleInfo & { adminOption: boolean | null }>;
}

/**
 * One round trip for the pre-flight: the roles (by exact name), the admin's own attributes, and
 * on PostgreSQL 16+ whether it holds ADMIN OPTION on each role.
 */
export async function inspectRoleAccess(client: ClientBase, roles: string[]): Promise<RoleAccess> {
  const res = await client.query<{
    admin: string;
    admin_super: boolean;
    admin_createrole: boolean;
    admin_signal: boolean;
    v: number;
    rolname: string | null;
    rolsuper: boolean | null;
    rolcanlogin: boolean | null;
    rolvaliduntil: Date | null;
    rolconnlimit: number | null;
    sessions: number | null;
    admin_option: boolean | null;
  }>(
    `SELECT me.rolname AS admin, me.rolsuper AS admin_super, me.rolcreaterole AS admin_createrole,
            pg_catalog.pg_has_role(current_user, 'pg_signal_backend', 'MEMBER') AS admin_signal,
            current_setting('server_version_num')::int AS v,
            r.rolname, r.rolsuper, r.rolcanlogin, r.rolvaliduntil, r.rolconnlimit,
            (SELECT count(*)::int FROM pg_catalog.pg_stat_activity a WHERE r.oid IS NOT NULL AND a.usesysid = r.oid) AS sessions,
            CASE WHEN r.oid IS NOT NULL AND current_setting('server_version_num')::int >= 160000
                 THEN pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER WITH ADMIN OPTION') END AS admin_option
       FROM pg_catalog.pg_roles me
       LEFT JOIN pg_catalog.pg_roles r ON r.rolname = ANY($1::text[])
      WHERE me.rolname = current_user`,
    [roles],
  );
  const first = res.rows[0];
  const admin: AdminInfo = first
    ? {
        name: first.admin,
        superuser: first.admin_super,
        createRole: first.admin_createrole,
        serverVersion: first.v,
        canSignal: first.admin_super || first.admin_signal,
      }
    : { name: '?', superuser: false, createRole: false, serverVersion: 0, canSignal: false };
  const found = new Map<string, RoleInfo & { adminOption: boolean | null }>();
  for (const r of res.rows) {
    if (r.rolname === null) continue;
    found.set(r.rolname, {
      name: r.rolname,
      superuser: Boolean(r.rolsuper),
      canLogin: Boolean(r.rolcanlogin),
      validUntil: finiteDate(r.rolvaliduntil),
      connectionLimit: r.rolconnlimit ?? -1,
      sessions: r.sessions ?? 0,
      adminOption: r.admin_option,
    });
  }
  return { admin, roles: found };
}

/** The statement that gives the admin ADMIN OPTION on `role` without its data privileges. */
function adminOptionGrant(admin: AdminInfo, role: string): string {
  return `GRANT ${quoteIdent(role)} TO ${quoteIdent(admin.name)} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`;
}

/** PostgreSQL 16+ without ADMIN OPTION on the role: the one refusal that differs per role (its GRANT). */
function lacksAdminOption(admin: AdminInfo, role: RoleInfo & { adminOption: boolean | null }): boolean {
  return !admin.superuser && !role.superuser && admin.createRole && admin.serverVersion >= 160000 && !role.adminOption;
}

/**
 * Why the admin may not change `role`'s password, or null when it may. PostgreSQL 15 lets any
 * CREATEROLE login alter non-superuser roles; 16 and later also require ADMIN OPTION on the role
 * (granted automatically to the role's creator).
 */
export function adminCannotAlter(admin: AdminInfo, role: RoleInfo & { adminOption: boolean | null }): string | null {
  if (admin.superuser) return null;
  if (role.superuser)
    return `admin login ${admin.name} is not a superuser, and only a superuser may change a superuser's password`;
  if (!admin.createRole) return `admin login ${admin.name} lacks CREATEROLE`;
  if (lacksAdminOption(admin, role)) {
    return `admin login ${admin.name} has no ADMIN OPTION on the role (PostgreSQL 16+): ${adminOptionGrant(admin, role.name)}`;
  }
  return null;
}

/**
 * Every role of `roles` whose password the admin may not change, in one text naming `target`
 * (null when it may change them all). Roles refused for the same reason share one clause, and
 * roles lacking ADMIN OPTION get one GRANT each, so a pair missing both is fixed in one go.
 */
export function adminCannotAlterAny(
  admin: AdminInfo,
  roles: ReadonlyArray<RoleInfo & { adminOption: boolean | null }>,
  target: string,
): string | null {
  const byReason = new Map<string, string[]>();
  const withoutOption: string[] = [];
  for (const role of roles) {
    if (lacksAdminOption(admin, role)) {
      withoutOption.push(role.name);
      continue;
    }
    const why = adminCannotAlter(admin, role);
    if (why) byReason.set(why, [...(byReason.get(why) ?? []), role.name]);
  }
  const subject = (names: string[]) =>
    `${names.length === 1 ? 'role' : 'roles'} ${names.map((n) => JSON.stringify(n)).join(' and ')}`;
  const clauses = [...byReason].map(
    ([why, names]) => `cannot change the password of ${subject(names)} on target ${target}: ${why}`,
  );
  if (withoutOption.length > 0) {
    const them = withoutOption.length === 1 ? 'the role' : 'them';
    const grants = withoutOption.map((n) => adminOptionGrant(admin, n)).join('; ');
    clauses.push(
      `cannot change the password of ${subject(withoutOption)} on target ${target}: admin login ${admin.name} has no ADMIN OPTION on ${them} (PostgreSQL 16+): ${grants}`,
    );
  }
  return clauses.length > 0 ? clauses.join('; ') : null;
}
