import type { ClientBase } from 'pg';
import { quoteIdent } from '../../core/pg/quote.js';
import { accountRoles, type AccountConfig, type PgrotateConfig } from '../../core/config/config-schema.js';
import {
  SEVERITIES,
  severityRank,
  type AuditReport,
  type Finding,
  type NotChecked,
  type RoleEntry,
  type Severity,
} from '../../core/audit/audit-types.js';

// The insider-threat guide's inventory and least-privilege review, run as the target's admin
// login. One function per check; each adds findings, or says what it could not read. A check
// the admin lacks the privilege for is "not checked", never silently clean: a login that cannot
// read one catalog or function (pg_roles, pg_class, pg_db_role_setting, current_setting …) loses
// the checks that need it, and every other check still runs.

const INSUFFICIENT_PRIVILEGE = '42501';

export interface AuditInput {
  client: ClientBase;
  config: PgrotateConfig;
  target: string;
  /** last_rotated_at per account name, from the state database. */
  rotatedAt: Map<string, Date | null>;
  now?: Date;
}

interface Ctx extends AuditInput {
  admin: { role: string; superuser: boolean };
  /** Managed role → its account. */
  managed: Map<string, AccountConfig>;
  /** Roles with a stored password, when pg_authid is readable (else null: unknown). */
  withPassword: Set<string> | null;
  findings: Finding[];
  notChecked: NotChecked[];
  roles: RoleEntry[];
}

interface RoleRow {
  oid: number;
  rolname: string;
  rolcanlogin: boolean;
  rolsuper: boolean;
  rolcreaterole: boolean;
  rolcreatedb: boolean;
  rolbypassrls: boolean;
  rolreplication: boolean;
  rolvaliduntil: Date | null;
  rolconnlimit: number;
}

function isPrivilegeError(err: unknown): boolean {
  return (err as { code?: string }).code === INSUFFICIENT_PRIVILEGE;
}

/**
 * Run one check; when the admin login may not read what it needs, list `checks` as not checked
 * with PostgreSQL's reason ("permission denied for view pg_roles") instead of failing the audit.
 */
async function guarded(ctx: Ctx, checks: string[], needs: string, fn: () => Promise<void> | void): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!isPrivilegeError(err)) throw err;
    const why = err instanceof Error ? err.message : String(err);
    for (const check of checks)
      ctx.notChecked.push({ check, reason: `${needs}: ${why} (admin login ${ctx.admin.role})` });
  }
}

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
async function readRoles(ctx: Ctx): Promise<RoleRow[] | null> {
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
  const ctx: Ctx = { ...input, admin, managed, withPassword: null, findings: [], notChecked: [], roles: [] };
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

/** Every login role: managed or not, and how old its credential is by pgrotate's records. */
export function checkLoginInventory(ctx: Ctx, roles: RoleRow[]): void {
  const now = (ctx.now ?? new Date()).getTime();
  for (const r of roles.filter((x) => x.rolcanlogin)) {
    const account = ctx.managed.get(r.rolname) ?? null;
    const rotated = account ? (ctx.rotatedAt.get(account.name) ?? null) : null;
    ctx.roles.push({
      name: r.rolname,
      managed: account !== null,
      account: account?.name ?? null,
      attributes: attributesOf(r),
      validUntil: r.rolvaliduntil
        ? Number.isFinite(r.rolvaliduntil.getTime())
          ? r.rolvaliduntil.toISOString()
          : 'infinity'
        : null,
      lastRotatedAt: rotated?.toISOString() ?? null,
      credentialAgeDays: rotated ? Math.floor((now - rotated.getTime()) / 86_400_000) : null,
    });
    if (account && !rotated) {
      ctx.findings.push({
        check: 'credential-age',
        severity: 'medium',
        subject: r.rolname,
        message: `managed by account ${account.name} but never rotated by pgrotate`,
        fix: `pgrotate rotate ${account.name}`,
      });
    } else if (account && rotated) {
      const every = scheduleInterval(account, ctx.config);
      if (every !== null && now - rotated.getTime() > every) {
        ctx.findings.push({
          check: 'credential-age',
          severity: 'medium',
          subject: r.rolname,
          message: `credential is ${Math.floor((now - rotated.getTime()) / 86_400_000)} days old, past its ${Math.round(every / 86_400_000)}-day schedule`,
          fix: `pgrotate rotate ${account.name}, and check that a worker or run-due job is running`,
        });
      }
    } else if (!account && r.rolname !== ctx.admin.role && ctx.withPassword?.has(r.rolname) !== false) {
      ctx.findings.push({
        check: 'unmanaged-login',
        severity: 'low',
        subject: r.rolname,
        message: `login role is not managed by pgrotate${ctx.withPassword ? ' and has a password' : ''}: nothing rotates its credential`,
        fix: `add an account for ${r.rolname} to pgrotate's config, or ALTER ROLE ${r.rolname} NOLOGIN if nobody uses it`,
      });
    }
  }
}

function attributesOf(r: RoleRow): string[] {
  const out: string[] = [];
  if (r.rolsuper) out.push('SUPERUSER');
  if (r.rolcreaterole) out.push('CREATEROLE');
  if (r.rolcreatedb) out.push('CREATEDB');
  if (r.rolbypassrls) out.push('BYPASSRLS');
  if (r.rolreplication) out.push('REPLICATION');
  return out;
}

function scheduleInterval(account: AccountConfig, config: PgrotateConfig): number | null {
  const s = account.schedule ?? config.defaults.schedule;
  if (typeof s === 'object' && 'every' in s) return s.every;
  // A cron schedule fires at least weekly in practice; a month of slack avoids false alarms.
  if (typeof s === 'object') return 31 * 86_400_000;
  return null;
}

const ATTRIBUTE_RULES: Array<{
  key: keyof RoleRow;
  name: string;
  login: Severity;
  nologin: Severity;
  why: string;
  fix: (role: string) => string;
}> = [
  {
    key: 'rolcreaterole',
    name: 'CREATEROLE',
    login: 'high',
    nologin: 'medium',
    why: 'can create roles and change the passwords of other non-superuser roles',
    fix: (r) => `ALTER ROLE ${r} NOCREATEROLE (keep it only on the login pgrotate uses)`,
  },
  {
    key: 'rolcreatedb',
    name: 'CREATEDB',
    login: 'medium',
    nologin: 'low',
    why: 'can create databases',
    fix: (r) => `ALTER ROLE ${r} NOCREATEDB`,
  },
  {
    key: 'rolbypassrls',
    name: 'BYPASSRLS',
    login: 'high',
    nologin: 'medium',
    why: 'ignores every row-level security policy',
    fix: (r) => `ALTER ROLE ${r} NOBYPASSRLS`,
  },
  {
    key: 'rolreplication',
    name: 'REPLICATION',
    login: 'high',
    nologin: 'medium',
    why: 'can stream a copy of every database in the cluster',
    fix: (r) => `ALTER ROLE ${r} NOREPLICATION (keep it on the replication login only)`,
  },
];

/** Roles with SUPERUSER, CREATEROLE, CREATEDB, BYPASSRLS or REPLICATION. */
export function checkRoleAttributes(ctx: Ctx, roles: RoleRow[]): void {
  for (const r of roles) {
    if (r.rolsuper) {
      // The bootstrap superuser (oid 10) cannot be removed; the finding is about how it is reached.
      const bootstrap = r.oid === 10;
      const severity: Severity = !r.rolcanlogin ? 'medium' : bootstrap ? 'medium' : 'critical';
      ctx.findings.push({
        check: 'superuser',
        severity,
        subject: r.rolname,
        message: bootstrap
          ? `bootstrap superuser${r.rolcanlogin ? ' can log in' : ''}: anyone with its password bypasses every control`
          : `${r.rolcanlogin ? 'login' : 'group'} role is a superuser: it bypasses every permission check, RLS and audit setting`,
        fix: bootstrap
          ? `allow it only via local peer/cert authentication in pg_hba.conf, and use least-privilege roles for daily work`
          : `ALTER ROLE ${r.rolname} NOSUPERUSER (grant the specific privileges it needs instead)`,
      });
      // A superuser has every other attribute implicitly; one finding says it all.
      continue;
    }
    for (const rule of ATTRIBUTE_RULES) {
      if (!r[rule.key]) continue;
      const isAdmin = r.rolname === ctx.admin.role && rule.key === 'rolcreaterole';
      ctx.findings.push({
        check: 'privileged-role',
        severity: isAdmin ? 'info' : r.rolcanlogin ? rule.login : rule.nologin,
        subject: r.rolname,
        message: isAdmin
          ? `has ${rule.name}: this is pgrotate's admin login, which needs it to change passwords`
          : `has ${rule.name}: ${rule.why}`,
        fix: isAdmin ? 'keep this login out of daily use; only pgrotate should hold its password' : rule.fix(r.rolname),
      });
    }
  }
}

/** Login roles whose password never expires and that nothing rotates. */
export function checkPasswordExpiry(ctx: Ctx, roles: RoleRow[]): void {
  for (const r of roles) {
    if (!r.rolcanlogin || r.rolvaliduntil !== null || ctx.managed.has(r.rolname)) continue;
    // Without a stored password there is nothing to expire (certificate or peer logins).
    if (ctx.withPassword && !ctx.withPassword.has(r.rolname)) continue;
    ctx.findings.push({
      check: 'password-expiry',
      severity: 'medium',
      subject: r.rolname,
      message:
        'login role has no password expiry (VALID UNTIL) and is not rotated by pgrotate: a leaked password works forever',
      fix: `manage it with pgrotate, or ALTER ROLE ${r.rolname} VALID UNTIL '<date>'`,
    });
  }
}

/** Passwords still stored as MD5 hashes (pg_authid; superuser only). */
export async function checkMd5Passwords(ctx: Ctx): Promise<void> {
  try {
    const res = await ctx.client.query<{ rolname: string; kind: string }>(
      `SELECT rolname, CASE WHEN rolpassword LIKE 'md5%' THEN 'md5' ELSE 'other' END AS kind FROM pg_catalog.pg_authid WHERE rolpassword IS NOT NULL`,
    );
    ctx.withPassword = new Set(res.rows.map((r) => r.rolname));
    for (const r of res.rows.filter((x) => x.kind === 'md5')) {
      ctx.findings.push({
        check: 'md5-password',
        severity: 'high',
        subject: r.rolname,
        message:
          'password is stored as an MD5 hash: weak, and the hash itself is enough to log in with md5 authentication',
        fix: ctx.managed.has(r.rolname)
          ? `pgrotate rotate ${ctx.managed.get(r.rolname)?.name} (pgrotate always sets a SCRAM-SHA-256 verifier)`
          : `set password_encryption = 'scram-sha-256' and set a new password for ${r.rolname}`,
      });
    }
  } catch (err) {
    if (!isPrivilegeError(err)) throw err;
    ctx.notChecked.push({
      check: 'md5-password',
      reason: `pg_authid is readable only by a superuser; admin login ${ctx.admin.role} is not one`,
    });
  }
}

/** password_encryption must be scram-sha-256, or new passwords set by other tools are stored as MD5. */
export async function checkPasswordEncryption(ctx: Ctx): Promise<void> {
  const v = await setting(ctx.client, 'password_encryption');
  if (v !== 'scram-sha-256') {
    ctx.findings.push({
      check: 'password-encryption',
      severity: 'high',
      subject: 'password_encryption',
      message: `password_encryption is "${v}": passwords set by other tools are stored as MD5`,
      fix: `ALTER SYSTEM SET password_encryption = 'scram-sha-256'; SELECT pg_reload_conf();`,
    });
  }
}

/**
 * Statement logging that writes other tools' `CREATE/ALTER ROLE … PASSWORD 'plain'` to the
 * server log. pgrotate itself only ever sends SCRAM verifiers, but people and other tools do not.
 */
export async function checkStatementLogging(ctx: Ctx): Promise<void> {
  const level = await setting(ctx.client, 'log_statement');
  if (level === 'all' || level === 'ddl' || level === 'mod') {
    ctx.findings.push({
      check: 'statement-logging',
      severity: 'high',
      subject: 'log_statement',
      message: `log_statement = ${level} writes every CREATE/ALTER ROLE … PASSWORD '…' sent in plaintext by other tools to the server log`,
      fix: `ALTER SYSTEM SET log_statement = 'none' (use pgaudit with log_parameter off for auditing), or make every tool send pre-hashed SCRAM passwords`,
    });
  }
  const duration = await setting(ctx.client, 'log_min_duration_statement');
  if (duration !== '-1') {
    ctx.findings.push({
      check: 'statement-logging',
      severity: 'medium',
      subject: 'log_min_duration_statement',
      message: `log_min_duration_statement = ${duration} logs the text of slow statements, including password changes`,
      fix: `ALTER SYSTEM SET log_min_duration_statement = -1, or log sampled durations without statement text (log_duration)`,
    });
  }
}

/** `log_statement` set per role or per database (ALTER ROLE/DATABASE … SET), which the server setting does not show. */
export async function checkLoggingOverrides(ctx: Ctx): Promise<void> {
  const overrides = await ctx.client.query<{ who: string; setting: string }>(
    `SELECT COALESCE(r.rolname, '(all roles)') || ' in ' || COALESCE(d.datname, '(all databases)') AS who, s.setting
       FROM pg_catalog.pg_db_role_setting rs
       CROSS JOIN LATERAL unnest(rs.setconfig) AS s(setting)
       LEFT JOIN pg_catalog.pg_roles r ON r.oid = rs.setrole
       LEFT JOIN pg_catalog.pg_database d ON d.oid = rs.setdatabase
      WHERE s.setting ~ '^log_statement=(all|ddl|mod)$'`,
  );
  for (const o of overrides.rows) {
    ctx.findings.push({
      check: 'statement-logging',
      severity: 'high',
      subject: o.who,
      message: `${o.setting} is set for ${o.who}: plaintext passwords in its statements reach the server log`,
      fix: `ALTER ROLE … / ALTER DATABASE … RESET log_statement`,
    });
  }
}

/** Sessions idle inside a transaction hold locks and connections forever without a timeout. */
export async function checkIdleTimeout(ctx: Ctx): Promise<void> {
  const v = await setting(ctx.client, 'idle_in_transaction_session_timeout');
  if (v === '0') {
    ctx.findings.push({
      check: 'idle-timeout',
      severity: 'low',
      subject: 'idle_in_transaction_session_timeout',
      message:
        'idle_in_transaction_session_timeout is 0: a session can sit idle in a transaction forever, holding locks and a connection',
      fix: `ALTER SYSTEM SET idle_in_transaction_session_timeout = '5min'; SELECT pg_reload_conf();`,
    });
  }
}

/** pg_hba.conf lines that accept trust, cleartext password or MD5 authentication. */
export async function checkHbaRules(ctx: Ctx): Promise<void> {
  let rows: Array<{
    line_number: number;
    type: string;
    database: string[] | null;
    user_name: string[] | null;
    address: string | null;
    auth_method: string | null;
    error: string | null;
  }>;
  try {
    rows = (
      await ctx.client.query(
        `SELECT line_number, type, database, user_name, address, auth_method, error FROM pg_catalog.pg_hba_file_rules ORDER BY line_number`,
      )
    ).rows;
  } catch (err) {
    if (!isPrivilegeError(err)) throw err;
    ctx.notChecked.push({
      check: 'hba-rules',
      reason: `pg_hba_file_rules is readable only by a superuser (or with EXECUTE on pg_hba_file_rules()); admin login ${ctx.admin.role} cannot read it`,
    });
    return;
  }
  for (const r of rows) {
    const line = `pg_hba.conf line ${r.line_number} (${r.type} ${(r.database ?? []).join(',')} ${(r.user_name ?? []).join(',')}${r.address ? ` ${r.address}` : ''})`;
    if (r.error) {
      ctx.findings.push({
        check: 'hba-rules',
        severity: 'low',
        subject: line,
        message: `the line has an error: ${r.error}`,
        fix: 'fix the line; PostgreSQL ignores pg_hba.conf changes until it parses',
      });
      continue;
    }
    const method = r.auth_method;
    if (method === 'trust') {
      ctx.findings.push({
        check: 'hba-rules',
        severity: r.type === 'local' ? 'high' : 'critical',
        subject: line,
        message: 'trust authentication: no password at all, so rotating credentials protects nothing here',
        fix: 'use scram-sha-256 (or peer for local admin access)',
      });
    } else if (method === 'password') {
      ctx.findings.push({
        check: 'hba-rules',
        severity: 'high',
        subject: line,
        message: 'password authentication sends the password in cleartext',
        fix: 'use scram-sha-256',
      });
    } else if (method === 'md5') {
      ctx.findings.push({
        check: 'hba-rules',
        severity: 'medium',
        subject: line,
        message: 'md5 authentication still accepts MD5-stored passwords (weaker, replayable hash)',
        fix: 'use scram-sha-256 once every password is stored as SCRAM',
      });
    }
  }
}

/** Tables the config marks sensitive must have row-level security enabled. */
export async function checkSensitiveTables(ctx: Ctx): Promise<void> {
  const tables = ctx.config.targets[ctx.target]?.sensitiveTables ?? [];
  for (const name of tables) {
    const [schema, table] = name.split('.') as [string, string];
    const res = await ctx.client.query<{ relrowsecurity: boolean; relforcerowsecurity: boolean }>(
      `SELECT c.relrowsecurity, c.relforcerowsecurity FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
      [schema, table],
    );
    const row = res.rows[0];
    if (!row) {
      ctx.findings.push({
        check: 'row-level-security',
        severity: 'low',
        subject: name,
        message: 'listed in sensitiveTables but not found in the target database',
        fix: `correct targets.${ctx.target}.sensitiveTables`,
      });
    } else if (!row.relrowsecurity) {
      ctx.findings.push({
        check: 'row-level-security',
        severity: 'high',
        subject: name,
        message: 'holds sensitive data without row-level security: every role with SELECT sees every row',
        fix: `ALTER TABLE ${name} ENABLE ROW LEVEL SECURITY; then CREATE POLICY … for each reader`,
      });
    }
  }
}

/** Step 5: logins and session ends that leave no line in the server log. */
export async function checkConnectionLogging(ctx: Ctx): Promise<void> {
  for (const name of ['log_connections', 'log_disconnections']) {
    const v = (await setting(ctx.client, name)).trim().toLowerCase();
    // PostgreSQL 18 turned log_connections into a list; empty means off.
    if (!['off', 'false', '0', ''].includes(v)) continue;
    ctx.findings.push({
      check: 'connection-logging',
      severity: 'medium',
      subject: name,
      message: `${name} is off: a login with a leaked password, and when its session ended, leave no trace in the server log`,
      fix: `ALTER SYSTEM SET ${name} = on; SELECT pg_reload_conf();`,
    });
  }
}

/** Step 5: sensitive tables whose reads and writes no audit log records. */
export async function checkPgaudit(ctx: Ctx): Promise<void> {
  const tables = ctx.config.targets[ctx.target]?.sensitiveTables ?? [];
  if (tables.length === 0) return;
  if (preloaded(await setting(ctx.client, 'shared_preload_libraries')).includes('pgaudit')) return;
  ctx.findings.push({
    check: 'pgaudit',
    severity: 'medium',
    subject: 'shared_preload_libraries',
    message: `pgaudit is not loaded although ${tables.length} sensitive table(s) are configured: who read or changed them is not recorded`,
    fix: `add pgaudit to shared_preload_libraries (restart), CREATE EXTENSION pgaudit, and set pgaudit.log = 'read, write' with pgaudit.log_parameter = off`,
  });
}

/** Step 4: people choose the passwords of logins pgrotate does not manage, and nothing checks them. */
export async function checkPasswordPolicy(ctx: Ctx, roles: RoleRow[]): Promise<void> {
  const unmanaged = roles.filter(
    (r) => r.rolcanlogin && !ctx.managed.has(r.rolname) && (!ctx.withPassword || ctx.withPassword.has(r.rolname)),
  );
  if (unmanaged.length === 0) return;
  const libs = preloaded(await setting(ctx.client, 'shared_preload_libraries'));
  if (libs.includes('passwordcheck') || libs.includes('credcheck')) return;
  ctx.findings.push({
    check: 'password-policy',
    severity: 'low',
    subject: 'shared_preload_libraries',
    message: `${unmanaged.length} login role(s) pgrotate does not manage have passwords chosen by people, and no password policy module (passwordcheck, credcheck) is loaded`,
    fix: `manage those logins with pgrotate, or add passwordcheck (or credcheck) to shared_preload_libraries and restart`,
  });
}

/** Step 7: application logins that can take every connection slot. */
export async function checkConnectionLimits(ctx: Ctx, roles: RoleRow[]): Promise<void> {
  const max = await setting(ctx.client, 'max_connections');
  for (const r of roles) {
    if (!r.rolcanlogin || !ctx.managed.has(r.rolname) || r.rolconnlimit >= 0) continue;
    ctx.findings.push({
      check: 'connection-limit',
      severity: 'low',
      subject: r.rolname,
      message: `application login has no CONNECTION LIMIT: a leaked credential or a runaway client can take all max_connections = ${max} slots`,
      fix: `ALTER ROLE ${quoteIdent(r.rolname)} CONNECTION LIMIT <its pool size plus headroom>`,
    });
  }
}

/** pgrotate's own admin and state logins on this target, when no account rotates them. */
export function checkOwnLogins(ctx: Ctx): void {
  const target = ctx.config.targets[ctx.target];
  const own = new Map<string, string>();
  if (!ctx.managed.has(ctx.admin.role)) own.set(ctx.admin.role, 'admin');
  try {
    const u = new URL(ctx.config.state.url);
    const user = decodeURIComponent(u.username);
    const sameServer =
      target && decodeURIComponent(u.hostname) === target.host && (u.port ? Number(u.port) : 5432) === target.port;
    if (user && sameServer && !ctx.managed.has(user)) own.set(user, own.has(user) ? 'admin and state' : 'state');
  } catch {
    // An unparsable state URL is refused when the config is loaded.
  }
  for (const [role, what] of own) {
    ctx.findings.push({
      check: 'own-login',
      severity: 'medium',
      subject: role,
      message: `pgrotate's ${what} login is not rotated by any account: the most powerful credential pgrotate holds never changes`,
      fix: `add a single-user account for ${role} and read its password from a provider (see "Rotating pgrotate's own logins" in docs/security.md)`,
    });
  }
}

/** Library names in shared_preload_libraries, lower case. */
function preloaded(value: string): string[] {
  return value
    .split(',')
    .map((x) => x.trim().replace(/^"|"$/g, '').toLowerCase())
    .filter(Boolean);
}

async function setting(client: ClientBase, name: string): Promise<string> {
  const res = await client.query<{ v: string }>('SELECT current_setting($1) AS v', [name]);
  return res.rows[0]?.v ?? '';
}
