import { accountRoles, selfAdministered, type AccountConfig } from '../config/config-schema.js';
import {
  AdminPrivilegeError,
  LoginPathClosedError,
  RoleCannotLoginError,
  RoleNotFoundError,
  SuperuserRefusedError,
  TargetUnreachableError,
} from '../errors.js';
import { quoteIdent } from '../pg/quote.js';
import { checkPgbouncers } from '../pgbouncer/pgbouncer-sync.js';
import { adminCannotAlterAny, inspectRoleAccess, type RoleAccess, type RoleInfo } from '../pg/role-admin.js';
import type { LoginPathProbe } from '../pg/target-connector.js';
import type { SecretProvider, SecretValue } from '../provider/secret-provider.js';
import { accountError } from './account-error.js';
import { adminNeededOnce, withRoleChanger } from './role-changer.js';
import type { Plan } from './rotation-context.js';
import { forAccount } from './pgbouncer-step.js';
import type { RotationIo } from './rotation-io.js';
import type { RotateOptions } from './rotate-options.js';
import type { RotationStrategy } from './strategies/rotation-strategy.js';
import { checkTwin, createPlannedTwin, type TwinPlan } from './twin-preflight.js';

// The checks made before a rotation changes anything: the role(s), the admin login, the
// provider, the login path. Whatever they refuse leaves the target and the provider untouched.

/** What pre-flight is asked about: one account, its strategy and provider, the caller's options. */
export interface PreflightInput {
  account: AccountConfig;
  strategy: RotationStrategy;
  provider: SecretProvider;
  opts: RotateOptions;
}

/** Checks made before anything changes: the role(s), the admin login, the provider. */
export async function preflight(io: RotationIo, { account, strategy, provider, opts }: PreflightInput): Promise<Plan> {
  const { deps } = io;
  const roles = accountRoles(account);
  // The catalogue, the provider and (for a single role) the login path are asked at once; their
  // answers are judged in the same order as before, so the first problem reported is the same.
  const currentRead = settledLater(io.readCurrent(account, provider));
  const inspection = selfAdministered(account)
    ? selfInspection(io, account, currentRead, roles)
    : deps.targets.withAdmin(account.target, account.name, (client) => inspectRoleAccess(client, roles));
  // A single role's probe starts now, with the current value still being read: it may reuse a
  // probe of the same role from moments ago, which is checked below once the value is known.
  const probeFor = (role: string, reuse: boolean) =>
    settledLater(deps.targets.probeLoginPath(account.target, role, { reuse }));
  const earlyProbe = strategy.earlyProbeRole !== null ? probeFor(strategy.earlyProbeRole, true) : null;
  const access = await inspection;
  // createTwin: a missing second role is created at the end of pre-flight, so it is not checked yet.
  const twinMissing = account.strategy === 'alternating' && account.createTwin && !access.roles.has(account.roles[1]);
  checkAccess(io, account, opts, access, twinMissing ? [account.roles[0]] : roles);
  // Every PgBouncer in front of the target must be reachable now: finding one down after the
  // ALTER ROLE would leave its auth_file behind the server.
  await forAccount(account, () => checkPgbouncers(deps.targets, deps.redactor, account.target));
  const warnings: string[] = [];
  const roleValidUntil = strategy.inspect(access.roles, warnings);
  const current = await currentRead;
  io.redact(account, current);
  let twin: TwinPlan | null = null;
  if (account.strategy === 'alternating' && account.createTwin) {
    const firstRotation = current === null || !account.roles.includes(current.username);
    twin = await deps.targets.withAdmin(account.target, account.name, (client) =>
      checkTwin(client, account, access.admin, firstRotation, warnings),
    );
  }
  // Refused now, before anything changes, when a kept key would carry the old password on.
  const kept = io.keptKeys(account, current);
  const choice = strategy.chooseRoles(current);
  const plan: Plan = { ...choice, kept, warnings, current };
  if (roleValidUntil !== undefined) plan.roleValidUntil = roleValidUntil;
  // An earlier probe's answer may serve only a rotation whose refused verify the rollback undoes
  // (a previous credential to restore, or an inactive role applications do not use). A first
  // rotation has nothing to restore, so it probes afresh: that is what the probe protects.
  const undoable = strategy.undoable(current, choice);
  let probing = earlyProbe ?? probeFor(plan.targetRole, undoable);
  if (!undoable && (await probing).reused) probing = probeFor(plan.targetRole, false);
  await checkLoginPath(account, plan.targetRole, probing);
  const first = twin?.create;
  if (account.strategy === 'alternating' && first && opts.dryRun) {
    warnings.push(
      `dry run: role ${JSON.stringify(account.roles[1])} would be created as a twin of ${JSON.stringify(first.name)}`,
    );
  } else if (account.strategy === 'alternating' && first) {
    // The last check passed: only now does pre-flight change the target.
    await deps.targets.withAdmin(account.target, account.name, (client) =>
      createPlannedTwin(client, account, first, access.admin.serverVersion),
    );
  }
  return plan;
}

/**
 * `admin: self`: the catalogue is read on a login as the role with the provider's current
 * credential, which is also the proof that apply can log in. One that does not log in is refused
 * here, before anything changes: without an admin nobody but PostgreSQL knows the live password.
 */
async function selfInspection(
  io: RotationIo,
  account: AccountConfig,
  currentRead: Promise<SecretValue | null>,
  roles: string[],
): Promise<RoleAccess> {
  const current = await currentRead;
  const role = roles[0] as string;
  const refused = (why: string) =>
    `admin: self logs in as role ${JSON.stringify(role)} with the provider's current credential, and target ${account.target} refused it (${why}). Nothing was changed. ${adminNeededOnce(account, role)}`;
  return withRoleChanger(io, account, [current?.password], refused, (client) => inspectRoleAccess(client, roles));
}

/** The admin login may do what this rotation asks, and every role exists, logs in and may be rotated. */
function checkAccess(
  io: RotationIo,
  account: AccountConfig,
  opts: RotateOptions,
  access: RoleAccess,
  roles: string[],
): void {
  const own = io.deps.ownLogin?.(account) ?? null;
  if (selfAdministered(account)) return checkSelfAccess(account, opts, access, own !== null);
  if (opts.terminateSessions && (own || roles.includes(access.admin.name))) {
    throw accountError(
      AdminPrivilegeError,
      account,
      `account ${account.name}: --terminate-sessions would end pgrotate's own sessions (the role is its ${own ? 'state or admin' : 'admin'} login on target ${account.target}); rotate it without --terminate-sessions`,
    );
  }
  if (opts.terminateSessions && !access.admin.canSignal) {
    // Found out now, not after the new password is live and the sessions still run.
    throw accountError(
      AdminPrivilegeError,
      account,
      `account ${account.name}: --terminate-sessions needs the admin login ${access.admin.name} on target ${account.target} to end other roles' sessions: GRANT pg_signal_backend TO ${quoteIdent(access.admin.name)}`,
    );
  }
  for (const role of roles) checkRole(account, role, access.roles.get(role));
  // Every role the admin may not alter, in one error (a pair missing ADMIN OPTION on both roles
  // would otherwise take two runs to fix). Any role may change its own password (pgrotate
  // rotating its admin login). Each role exists here: checkRole refused a missing one.
  const others = roles
    .filter((r) => r !== access.admin.name)
    .map((r) => access.roles.get(r) as RoleInfo & { adminOption: boolean | null });
  const denied = adminCannotAlterAny(access.admin, others, account.target);
  if (denied) throw accountError(AdminPrivilegeError, account, `account ${account.name}: ${denied}`);
}

/**
 * `admin: self`: the login is the role itself, which may always set its own password and end its
 * own other sessions (pg_terminate_backend allows a role's own backends), so no privilege is
 * checked; only pgrotate's own login may not have its sessions ended.
 */
function checkSelfAccess(account: AccountConfig, opts: RotateOptions, access: RoleAccess, ownLogin: boolean): void {
  if (opts.terminateSessions && ownLogin) {
    throw accountError(
      AdminPrivilegeError,
      account,
      `account ${account.name}: --terminate-sessions would end pgrotate's own sessions (the role is its state or admin login on target ${account.target}); rotate it without --terminate-sessions`,
    );
  }
  for (const role of accountRoles(account)) checkRole(account, role, access.roles.get(role));
}

/** One role exists, is not a superuser (unless allowed) and can log in. */
function checkRole(account: AccountConfig, role: string, info: RoleInfo | undefined): void {
  const where = `role ${JSON.stringify(role)}`;
  if (!info) {
    throw accountError(
      RoleNotFoundError,
      account,
      `account ${account.name}: ${where} does not exist on target ${account.target}`,
    );
  }
  if (info.superuser && !account.allowSuperuser) {
    throw accountError(
      SuperuserRefusedError,
      account,
      `account ${account.name}: ${where} on target ${account.target} is a superuser; set allowSuperuser: true on the account to rotate it`,
    );
  }
  if (!info.canLogin) {
    throw accountError(
      RoleCannotLoginError,
      account,
      `account ${account.name}: ${where} on target ${account.target} is NOLOGIN; a password on it would be useless`,
    );
  }
}

/**
 * Prove before anything changes that a login as the role can reach a password check from
 * here, so verify can succeed; otherwise a first rotation would replace the password only the
 * applications knew with one nobody can prove.
 */
async function checkLoginPath(account: AccountConfig, role: string, probing: Promise<LoginPathProbe>): Promise<void> {
  const probe = await probing;
  if (probe.open) return;
  const where = `role ${JSON.stringify(role)} on target ${account.target}`;
  if (probe.reason === 'fault') {
    throw accountError(
      TargetUnreachableError,
      account,
      `account ${account.name}: cannot probe the login path of ${where}: ${probe.message}`,
    );
  }
  const cause =
    probe.reason === 'host-refused'
      ? `pg_hba.conf refuses a password login as ${where} from pgrotate's host (${probe.message})`
      : `pg_hba.conf lets ${where} log in from pgrotate's host without a password (trust), so a verify login from here could not prove the new password`;
  throw accountError(
    LoginPathClosedError,
    account,
    `account ${account.name}: ${cause}. Nothing was changed. Fix: add a pg_hba.conf line that checks a password (scram-sha-256) for this role from the host pgrotate runs on, then reload (SELECT pg_reload_conf())`,
  );
}

/**
 * The same promise, marked as handled: it is awaited later, after other checks that may throw
 * first, and an early rejection must not count as unhandled meanwhile.
 */
function settledLater<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}
