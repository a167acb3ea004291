import type { ClientBase } from 'pg';
import { accountRoles, type AccountConfig } from '../../core/config/config-schema.js';
import { SEVERITIES, severityRank, type AuditReport, type Severity } from '../../core/audit/audit-types.js';
import { type AuditContext, type AuditInput, type RoleRow, guarded } from './audit-context.js';
import { checkConnectionLimits } from './checks/connection-limits.js';
import { checkConnectionLogging } from './checks/connection-logging.js';
import { checkHbaRules } from './checks/hba-rules.js';
import { checkIdleTimeout } from './checks/idle-timeout.js';
import { checkLoginInventory } from './checks/login-inventory.js';
import { checkMd5Passwords } from './checks/md5-passwords.js';
import { checkOwnLogins } from './checks/own-logins.js';
import { checkPasswordEncryption } from './checks/password-encryption.js';
import { checkPasswordExpiry } from './checks/password-expiry.js';
import { checkPasswordPolicy } from './checks/password-policy.js';
import { checkPgaudit } from './checks/pgaudit.js';
import { checkPgbouncerAuthQuery } from './checks/pgbouncer-auth-query.js';
import { checkRoleAttributes } from './checks/role-attributes.js';
import { checkSensitiveTables } from './checks/sensitive-tables.js';
import { checkLoggingOverrides, checkStatementLogging } from './checks/statement-logging.js';
import { checkTwinDrift } from './checks/twin-drift.js';

// The insider-threat guide's inventory and least-privilege review, run as the target's admin
// login. One check per file under checks/ (a new check goes there and is called from runChecks);
// each adds findings, or says what it could not read. A check the admin lacks the privilege for is
// "not checked", never silently clean: a login that cannot read one catalog or function
// (pg_roles, pg_class, pg_db_role_setting, current_setting …) loses the checks that need it, and
// every other check still runs.

export type { AuditInput } from './audit-context.js';

/** The checks that read the role list (pg_roles). */
const ROLE_CHECKS = [
  'credential-age',
  'unmanaged-login',
  'superuser',
  'privileged-role',
  'password-expiry',
  'password-policy',
  'connection-limit',
];

/** The role list, or null (and its checks listed as not checked) when pg_roles is unreadable. */
async function readRoles(ctx: AuditContext): Promise<RoleRow[] | null> {
  const out: { roles: RoleRow[] | null } = { roles: null };
  await guarded(ctx, ROLE_CHECKS, 'the role list (pg_catalog.pg_roles)', async () => {
    out.roles = await listRoles(ctx.client);
  });
  return out.roles;
}

/** Roles of the cluster that people create (not the pg_* built-ins). */
async function listRoles(client: ClientBase): Promise<RoleRow[]> {
  const res = await client.query<RoleRow>(
    `SELECT oid::int AS oid, rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, rolvaliduntil, rolconnlimit
       FROM pg_catalog.pg_roles WHERE rolname !~ '^pg_' ORDER BY rolname`,
  );
  return res.rows;
}

/** Run every check and build the report. */
export async function runSecurityAudit(input: AuditInput): Promise<AuditReport> {
  const { client } = input;
  // SHOW needs no privilege (unlike pg_roles or current_setting), so the header always works.
  const who = await client.query<{ who: string }>('SELECT current_user AS who');
  const superuser = await client.query<{ is_superuser: string }>('SHOW is_superuser');
  const version = await client.query<{ server_version: string }>('SHOW server_version');
  const admin = { role: who.rows[0]?.who ?? '?', superuser: superuser.rows[0]?.is_superuser === 'on' };
  const managed = new Map<string, AccountConfig>();
  for (const a of input.config.accounts) {
    if (a.target !== input.target) continue;
    for (const role of accountRoles(a)) managed.set(role, a);
  }
  const ctx: AuditContext = { ...input, admin, managed, withPassword: null, findings: [], notChecked: [], roles: [] };
  await runChecks(ctx);
  const findings = ctx.findings.sort(
    (a, b) =>
      severityRank(b.severity) - severityRank(a.severity) ||
      a.check.localeCompare(b.check) ||
      a.subject.localeCompare(b.subject),
  );
  const counts = Object.fromEntries(
    SEVERITIES.map((s) => [s, findings.filter((f) => f.severity === s).length]),
  ) as Record<Severity, number>;
  return {
    target: input.target,
    serverVersion: version.rows[0]?.server_version ?? '?',
    admin,
    checkedAt: (input.now ?? new Date()).toISOString(),
    roles: ctx.roles,
    findings,
    notChecked: ctx.notChecked,
    counts,
  };
}

/** Every check, in order (md5 first: it learns which roles have a password, which later checks read). */
async function runChecks(ctx: AuditContext): Promise<void> {
  const roles = await readRoles(ctx);
  await checkMd5Passwords(ctx);
  if (roles) {
    checkLoginInventory(ctx, roles);
    checkRoleAttributes(ctx, roles);
    checkPasswordExpiry(ctx, roles);
  }
  // Needs only the config and the admin's own name.
  checkOwnLogins(ctx);
  const settings = 'server settings (current_setting)';
  await guarded(ctx, ['password-encryption'], settings, () => checkPasswordEncryption(ctx));
  await guarded(ctx, ['statement-logging'], settings, () => checkStatementLogging(ctx));
  await guarded(
    ctx,
    ['statement-logging'],
    'per-role and per-database settings (pg_catalog.pg_db_role_setting, pg_roles, pg_database)',
    () => checkLoggingOverrides(ctx),
  );
  await guarded(ctx, ['idle-timeout'], settings, () => checkIdleTimeout(ctx));
  await guarded(ctx, ['connection-logging'], settings, () => checkConnectionLogging(ctx));
  await guarded(ctx, ['pgaudit'], settings, () => checkPgaudit(ctx));
  if (roles) {
    await guarded(ctx, ['password-policy'], settings, () => checkPasswordPolicy(ctx, roles));
    await guarded(ctx, ['connection-limit'], settings, () => checkConnectionLimits(ctx, roles));
  }
  await checkHbaRules(ctx);
  await guarded(ctx, ['row-level-security'], 'table catalogs (pg_catalog.pg_class, pg_namespace)', () =>
    checkSensitiveTables(ctx),
  );
  await guarded(
    ctx,
    ['twin-drift'],
    'role memberships and settings (pg_catalog.pg_auth_members, pg_db_role_setting)',
    () => checkTwinDrift(ctx),
  );
  // Not the target's catalog: each listed PgBouncer's admin console.
  await checkPgbouncerAuthQuery(ctx);
}
