import type { ClientBase } from 'pg';
import { accountRoles, selfAdministered } from '../config/config-schema.js';
import { ProviderError, messageOf } from '../errors.js';
import { generatePassword } from '../password/password-generator.js';
import { setOwnPasswordVerifier, setPasswordVerifier, terminateSessions } from '../pg/role-admin.js';
import type { LoginResult } from '../pg/target-connector.js';
import { loginThroughPgbouncers, publishVerifier } from '../pgbouncer/pgbouncer-sync.js';
import { PendingConflictError } from '../provider/pending-conflict-error.js';
import type { KeptSecretKeys, RotatedSecretValue, SecretValue } from '../provider/secret-provider.js';
import { scramVerifier } from '../scram/scram-verifier.js';
import { renderSecretTemplate } from '../provider/secret-template.js';
import { nextDueAfter } from '../schedule/next-due.js';
import { failpoint } from './failpoint.js';
import type { Completed, RotationContext } from './rotation-context.js';
import type { RotationIo } from './rotation-io.js';
import { adminNeededOnce, withRoleChanger } from './role-changer.js';
import { abandonLostPending, clearStalePending, rollBack } from './rotation-recovery.js';
import { restartListOf, workloadLabel, type RestartOutcome } from './workload-restart.js';
import { forAccount } from './pgbouncer-step.js';

// The five steps of the protocol, one function each; rotation-engine.ts runs them in order and
// resumes from the recorded one. Each is idempotent, so an interrupted one is simply redone.

/**
 * Step 1: a new password, stored as pending in the provider. PostgreSQL is untouched. A pending
 * value of another rotation comes back as a PendingConflictError carrying it: it is dealt with
 * (clearStalePending) and the new value staged again; the common case costs one provider call.
 */
export async function stage(io: RotationIo, ctx: RotationContext): Promise<void> {
  const { account, provider, rotation } = ctx;
  const { deps } = io;
  const endpoint = deps.targets.endpoint(account.target);
  const now = new Date();
  const value: RotatedSecretValue = {
    username: rotation.targetRole,
    password: generatePassword(account.password ?? deps.defaults.password),
    host: deps.targets.publicHost(account.target),
    port: endpoint.port,
    dbname: endpoint.database,
    engine: 'postgres',
    rotatedAt: now.toISOString(),
    rotationId: rotation.id,
  };
  // The secret says when to refresh (rotatesAt: record keeps it as the next due time), and stores
  // with their own expiry metadata (Azure's expiresOn) keep it in step with the schedule.
  const nextDue = nextDueAfter(account.schedule ?? deps.defaults.schedule, now, account.name);
  if (nextDue) value.nextDueAt = value.rotatesAt = nextDue.toISOString();
  // When the previous role stops working, as known at stage: record counts the grace from the
  // switch, a moment later, so the real VALID UNTIL is never earlier than what the secret says.
  const oldExpiry = ctx.strategy.stagedOldCredentialExpiry(rotation, !!ctx.opts.terminateSessions);
  if (oldExpiry) value.previousValidUntil = oldExpiry.toISOString();
  deps.redactor.add(value.password);
  // The pending value carries the kept keys, so the promote (maybe by a resumed attempt) keeps
  // them. A resumed rotation did not run pre-flight: it reads the current value for them.
  const kept = ctx.kept !== undefined ? ctx.kept : await readKeptKeys(io, ctx);
  // The secretTemplate keys are rendered from this value (its role, its new password), so the
  // pending value and, once promoted, the current one carry connection strings that log in.
  const rendered = renderSecretTemplate(io.template(account), value);
  if (kept || Object.keys(rendered).length > 0) value.extra = { ...kept, ...rendered };
  io.redact(account, value);
  const stageOnce = () =>
    io.providerCall(account, 'stage a pending value in', () => provider.stagePending(account.secret, value));
  let staged: SecretValue;
  try {
    staged = await stageOnce();
  } catch (err) {
    const conflict = err instanceof ProviderError ? err.cause : undefined;
    if (!(conflict instanceof PendingConflictError)) throw err;
    await clearStalePending(io, ctx, conflict.existing);
    staged = await stageOnce();
  }
  io.redact(account, staged);
  ctx.staged = staged;
}

/** The current value's kept keys, read for a rotation that is resumed before its stage. */
async function readKeptKeys(io: RotationIo, ctx: RotationContext): Promise<KeptSecretKeys | null> {
  const current = await io.readCurrent(ctx.account, ctx.provider);
  io.redact(ctx.account, current);
  return io.keptKeys(ctx.account, current);
}

/**
 * Step 2: the SCRAM verifier of the pending password goes to PostgreSQL; the plaintext never
 * does. Null when the provider holds no pending value of this rotation.
 */
export async function apply(io: RotationIo, ctx: RotationContext): Promise<Date | null> {
  const { account, provider, rotation } = ctx;
  const pending = ctx.staged ?? (await io.readPending(account, provider));
  if (!pending || pending.rotationId !== rotation.id) return null;
  io.redact(account, pending);
  // A resumed rotation read it back: verify uses the value just applied, without a second read.
  ctx.staged = pending;
  const verifier = await scramVerifier(pending.password, io.deps.defaults.scramIterations);
  // The strategy's expiry goes in the same statement, so password and expiry never diverge.
  const validUntil = ctx.strategy.appliedValidUntil();
  if (selfAdministered(account)) await applyOnSelf(io, ctx, pending, verifier);
  else
    await io.deps.targets.withAdmin(account.target, account.name, (client) =>
      setPasswordVerifier(client, rotation.targetRole, verifier, validUntil),
    );
  io.followOwnLogin(account, rotation.targetRole, pending.password);
  // The same verifier (never the password) into each PgBouncer's auth_file: PgBouncer passes the
  // client's SCRAM proof on to the server, which works only when both hold the same verifier.
  await forAccount(account, () =>
    publishVerifier(io.deps.targets, io.deps.redactor, account.target, rotation.targetRole, verifier, () =>
      failpoint('after-pgbouncer-file', account.name, io.deps.env),
    ),
  );
  return new Date();
}

/**
 * `admin: self`: the role sets its own verifier, logged in with the password it has now: the
 * current one (read by pre-flight), or after a crash past this ALTER the pending one, which a
 * resumed attempt therefore tries first. Neither logging in leaves the role as it was.
 */
async function applyOnSelf(io: RotationIo, ctx: RotationContext, pending: SecretValue, verifier: string) {
  const { account, rotation } = ctx;
  const resumed = ctx.current === undefined;
  const current = resumed ? await io.readCurrent(account, ctx.provider) : ctx.current;
  io.deps.redactor.add(current?.password);
  const passwords = resumed ? [pending.password, current?.password] : [current?.password, pending.password];
  const refused = (why: string) =>
    `admin: self logs in as role ${JSON.stringify(rotation.targetRole)} to set its new password, and target ${account.target} refused both the current and the pending credential (${why}); the password was not changed. ${adminNeededOnce(account, rotation.targetRole)}`;
  await withRoleChanger(io, account, passwords, refused, (client) => setOwnPasswordVerifier(client, verifier));
}

/** Is the provider's current value already this rotation's (promoted by an attempt that died)? */
export async function promotedEarlier(io: RotationIo, ctx: RotationContext): Promise<boolean> {
  const current = await io.readCurrent(ctx.account, ctx.provider);
  io.redact(ctx.account, current);
  if (current?.rotationId === ctx.rotation.id) return true;
  // Staged anew next: the value it keeps keys from is the one just read.
  ctx.kept = io.keptKeys(ctx.account, current);
  return false;
}

/** Step 3: log in with the pending password as an application would. */
export async function verify(io: RotationIo, ctx: RotationContext): Promise<void> {
  const { account, provider, rotation } = ctx;
  const pending = ctx.staged ?? (await io.readPending(account, provider));
  if (!pending || pending.rotationId !== rotation.id) {
    // Already promoted by an attempt that crashed before recording it.
    const current = await io.readCurrent(account, provider);
    if (current?.rotationId === rotation.id) return verifyLogin(io, ctx, current);
    return abandonLostPending(io, ctx, current);
  }
  return verifyLogin(io, ctx, pending);
}

/** Log in as the rotated role with `value`'s password, with backoff; a failure rolls back. */
async function verifyLogin(io: RotationIo, ctx: RotationContext, value: SecretValue): Promise<void> {
  const { account, rotation } = ctx;
  const { deps } = io;
  deps.redactor.add(value.password);
  const attempts = deps.defaults.verifyAttempts;
  let last: LoginResult = { ok: false, authFailure: false, refusal: 'fault', message: 'not attempted' };
  let lastVia = '';
  for (let i = 0; i < attempts; i++) {
    last = await deps.targets.tryLogin(account.target, rotation.targetRole, value.password);
    lastVia = '';
    if (last.ok) {
      // Applications may come through PgBouncer: the new credential must log in there too.
      const refused = await loginThroughPgbouncers(deps.targets, account.target, rotation.targetRole, value.password);
      if (refused) [last, lastVia] = [refused.result, ` through ${refused.instance}`];
    }
    if (last.ok) {
      if (last.proof !== 'session') {
        ctx.warnings.push(
          `the server accepted the new password of role ${JSON.stringify(rotation.targetRole)} and then refused the session (${last.message}); new sessions are refused until one ends`,
        );
      }
      return;
    }
    if (i < attempts - 1) await new Promise((r) => setTimeout(r, (deps.verifyBackoffMs ?? 250) * 2 ** i));
  }
  const message = `account ${account.name}: the new credential of role ${JSON.stringify(rotation.targetRole)} did not log in to target ${account.target}${lastVia}: ${last.message}`;
  await rollBack(io, ctx, message, last.authFailure);
}

/** Step 4: the proven pending value becomes the provider's current value. */
export async function promote(io: RotationIo, ctx: RotationContext): Promise<void> {
  const { account, provider, rotation } = ctx;
  await io.providerCall(account, 'promote the pending value of', () =>
    provider.promotePending(account.secret, rotation.id, ctx.staged),
  );
}

/** Step 5: expire the previous login (alternating), end sessions if asked, finish the record. */
export async function record(io: RotationIo, ctx: RotationContext): Promise<Completed> {
  const { account, rotation, fence } = ctx;
  const expiry = rotation.oldCredentialExpiresAt;
  const nextDueAt = recordedNextDue(io, ctx);
  let ended: Pick<Completed, 'sessionsEnded' | 'sessionsError'> = { sessionsEnded: null, sessionsError: null };
  // The new credential is current in the store: restart its readers first (a resumed record
  // restarts them again: at least once, never before the promote).
  const restarts = await restartWorkloads(io, ctx);
  // admin: self: the role, promoted a moment ago, logs in with this rotation's password.
  const passwords = selfAdministered(account) ? await promotedPasswords(io, ctx) : [];
  const refused = (why: string) =>
    `the new credential is current, but admin: self could not log in as role ${JSON.stringify(rotation.targetRole)} on target ${account.target} to finish the rotation (${why}); it stays resumable`;
  await withRoleChanger(io, account, passwords, refused, async (client) => {
    const input = { rotation, nextDueAt, roleValidUntil: ctx.roleValidUntil, warnings: ctx.warnings };
    await ctx.strategy.afterPromote(client, input);
    if (ctx.opts.terminateSessions) ended = await endSessions(io, ctx, client);
  });
  const { sessionsEnded, sessionsError } = ended;
  await auditSessions(ctx, ended);
  await fence.succeed(rotation, {
    activeRole: rotation.targetRole,
    oldCredentialExpiresAt: expiry,
    nextDueAt,
    sessionsEnded,
    warnings: ctx.warnings,
  });
  await failpoint('after-record', account.name, io.deps.env);
  return { oldCredentialExpiresAt: expiry, nextDueAt, sessionsEnded, sessionsError, restarts };
}

/** Roll the account's workloads; each failure becomes a warning and an audit event, never an error. */
async function restartWorkloads(io: RotationIo, ctx: RotationContext): Promise<RestartOutcome[]> {
  const { account, rotation, fence } = ctx;
  const workloads = restartListOf(account, io.deps.defaults.restart);
  if (workloads.length === 0) return [];
  const restarter = io.deps.restarter;
  const outcomes: RestartOutcome[] = restarter
    ? await restarter.restart(workloads, { rotationId: rotation.id, at: new Date() })
    : workloads.map((workload) => ({ workload, restarted: false, problem: 'no Kubernetes API client is configured' }));
  for (const o of outcomes) {
    const base = { account: account.name, rotationId: rotation.id, actor: rotation.requestedBy };
    const workload = { kind: o.workload.kind, namespace: o.workload.namespace, name: o.workload.name };
    if (o.restarted) {
      await fence.audit({ ...base, kind: 'workload.restarted', detail: { workload } });
      continue;
    }
    const problem = io.deps.redactor.scrub(o.problem ?? 'unknown error');
    ctx.warnings.push(`could not restart ${workloadLabel(o.workload)}: ${problem} (the rotation stands)`);
    await fence.audit({ ...base, kind: 'workload.restart-failed', detail: { workload, problem } });
  }
  return outcomes;
}

/** The passwords a self login at record tries: this rotation's (promoted), then whatever is current. */
async function promotedPasswords(io: RotationIo, ctx: RotationContext): Promise<string[]> {
  const ours = ctx.staged?.rotationId === ctx.rotation.id ? ctx.staged.password : undefined;
  if (ours) return [ours];
  const current = await io.readCurrent(ctx.account, ctx.provider);
  io.deps.redactor.add(current?.password);
  return current ? [current.password] : [];
}

/**
 * The next due time record keeps: the staged value's rotatesAt, so the state and the secret agree;
 * computed now when this attempt holds no staged value of the rotation or it has none.
 */
function recordedNextDue(io: RotationIo, { account, rotation, staged }: RotationContext): Date | null {
  const schedule = account.schedule ?? io.deps.defaults.schedule;
  if (schedule !== 'manual' && staged?.rotationId === rotation.id && staged.rotatesAt) {
    const at = new Date(staged.rotatesAt);
    if (!Number.isNaN(at.getTime())) return at;
  }
  return nextDueAfter(schedule, new Date(), account.name);
}

/** End the sessions of the account's roles; a failure is reported, not thrown: the new password is live. */
async function endSessions(io: RotationIo, ctx: RotationContext, client: ClientBase) {
  try {
    let ended = 0;
    // pgrotate's own verify login may still be closing: it is left out by its backend pid.
    for (const role of accountRoles(ctx.account))
      ended += await terminateSessions(client, role, io.deps.targets.closingSessionsOf(ctx.account.target, role));
    return { sessionsEnded: ended, sessionsError: null };
  } catch (err) {
    // The new password is live: finish the rotation, and report the sessions as a failure.
    return { sessionsEnded: null, sessionsError: io.deps.redactor.scrub(messageOf(err)) };
  }
}

/** The audit event of the sessions ended (or not) at record. */
async function auditSessions(ctx: RotationContext, ended: Pick<Completed, 'sessionsEnded' | 'sessionsError'>) {
  const { account, rotation, fence } = ctx;
  const base = { account: account.name, rotationId: rotation.id, actor: ctx.sessionsActor };
  if (ended.sessionsEnded !== null) {
    await fence.audit({ ...base, kind: 'sessions.terminated', detail: { count: ended.sessionsEnded } });
  }
  if (ended.sessionsError !== null) {
    await fence.audit({ ...base, kind: 'sessions.terminate-failed', detail: { error: ended.sessionsError } });
  }
}
