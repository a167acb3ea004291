import type { App } from '../src/app/app-context.js';
import type { AccountConfig } from '../src/config/config-schema.js';
import { ConfigError, messageOf } from '../src/errors.js';
import { failpoint } from '../src/rotation/failpoint.js';
import { RotationEngine, type RotationResult } from '../src/rotation/rotation-engine.js';
import { rotationResultJson, type RotationResultJson } from '../src/rotation/rotation-result-json.js';
import { nextDueAfter, scheduleKey } from '../src/schedule/next-due.js';
import type { StateStore } from '../src/state/state-store.js';
import type { PerTargetLimiter } from './per-target-limiter.js';
import type { JobKind } from './rotation-job.js';

// Runs one requested rotation the same way for `worker` and `run-due`: under a per-target slot,
// through the engine (whose per-account fence is invariant I3), skipping work that a rotation
// started after the request already did. That check runs while the fence is held, so a job
// delivered twice, or queued twice by racing ticks, cannot rotate the account twice.

export interface RotationRequest {
  kind: JobKind;
  reason: string | null;
  requestedBy: string;
  terminateSessions: boolean;
  /** State-database time of the request, ms since epoch. */
  requestedAt: number;
}

export type RunOutcome = 'succeeded' | 'failed' | 'busy' | 'skipped';

/** The documented result of one requested rotation (also a job's return value); `detail` says why for `skipped`. */
export type RunResult = Omit<RotationResultJson, 'outcome'> & { outcome: RunOutcome };

export interface RunnerDeps {
  app: App;
  limiter: PerTargetLimiter;
  env?: NodeJS.ProcessEnv;
}

/** Rotate one account for a request; never throws for rotation failures. */
export async function runRequestedRotation(deps: RunnerDeps, accountName: string, req: RotationRequest, signal?: AbortSignal): Promise<RunResult> {
  const { app } = deps;
  let account: AccountConfig;
  try {
    account = app.account(accountName);
  } catch (err) {
    const why = `not in this worker's config: ${messageOf(err)}`;
    // A scheduled job for a removed account has nothing to do; a person's request was not done.
    if (req.kind === 'scheduled') return skipped(accountName, null, why);
    return blankRunResult(accountName, null, { error: { type: 'UnknownAccountError', message: app.redactor.scrub(why), permanent: true } });
  }
  const slot = await deps.limiter.acquire(account.target, signal);
  let satisfied: Satisfied | null = null;
  let result: RotationResult;
  try {
    const guarded = Object.create(app.state) as StateStore;
    guarded.tryAcquireFence = async (name: string) => {
      const fence = await app.state.tryAcquireFence(name);
      if (!fence) return null;
      satisfied = await alreadySatisfied(app.state, name, req);
      if (satisfied) {
        await fence.release();
        return null;
      }
      return fence;
    };
    const engine = new RotationEngine({
      state: guarded,
      targets: app.targets,
      provider: (name) => {
        const p = app.providers.get(name);
        if (!p) throw new ConfigError(`unknown provider ${name}`);
        return p;
      },
      redactor: app.redactor,
      log: app.log,
      defaults: app.config.defaults,
      env: deps.env,
      onResult: (r, ms) => app.rotationObservers.notify(r, ms),
    });
    const opts = { reason: req.reason ?? undefined, requestedBy: req.requestedBy, terminateSessions: req.terminateSessions };
    result = await engine.rotate(account, opts);
    // A resumed rotation may have started before this request (its password may be one the
    // offboarded person saw) or without ending sessions: then the request still needs its own.
    if (result.outcome === 'succeeded' && result.resumed && result.rotationId && req.kind !== 'scheduled') {
      if (!(await satisfiedBy(app.state, account.name, req, result.rotationId))) {
        const resumedRun = result;
        result = await engine.rotate(account, opts);
        // The resumed rotation ran with this request's --terminate-sessions: the sessions it ended
        // were ended for this request, and the report must count them (found by the chaos run).
        if (resumedRun.sessionsEnded !== null && result.sessionsEnded !== null) result.sessionsEnded += resumedRun.sessionsEnded;
      }
    }
  } finally {
    await slot.release();
  }
  const done = satisfied as Satisfied | null;
  if (done) {
    return blankRunResult(account.name, account.target, {
      outcome: 'skipped',
      detail: done.reason,
      rotationId: done.rotationId,
      sessionsEnded: done.sessionsEnded,
    });
  }
  if (result.outcome === 'succeeded' && result.rotationId) {
    // Plan the next rotation with the stable spread offset and remember the schedule it used.
    const schedule = account.schedule ?? app.config.defaults.schedule;
    const next = nextDueAfter(schedule, new Date(), account.name);
    await app.state.pool.query(`UPDATE ${app.state.s}.accounts SET next_due_at = $2, schedule = $3 WHERE name = $1 AND last_rotation_id = $4`, [
      account.name,
      next,
      scheduleKey(schedule),
      result.rotationId,
    ]);
    result.nextDueAt = next;
  }
  // The runner never dry-runs; the mapping only narrows the type.
  return { ...rotationResultJson(result), outcome: result.outcome === 'dry-run' ? 'succeeded' : result.outcome };
}

/** Why a request needs no rotation of its own: the rotation that already did it, if any. */
interface Satisfied {
  reason: string;
  rotationId: string | null;
  sessionsEnded: number | null;
}

/**
 * SQL condition on a `rotations` row (alias r): it did everything request $2/$3 asked for. It
 * succeeded, started after the request (state-database clock), and when sessions were to end
 * it ended them and expired the previous login at once (alternating accounts otherwise keep
 * their previous role for the grace period).
 */
function satisfiesSql(): string {
  return `r.account = $1 AND r.status = 'succeeded' AND r.started_at >= to_timestamp($2::double precision / 1000)
    AND (NOT $3::boolean OR (r.terminate_sessions AND r.sessions_ended IS NOT NULL
      AND (r.old_credential_expires_at IS NULL OR r.old_credential_expires_at <= r.finished_at)))`;
}

/** Did rotation `rotationId` do everything the request asked for? */
async function satisfiedBy(state: StateStore, account: string, req: RotationRequest, rotationId: string): Promise<boolean> {
  const res = await state.pool.query(`SELECT 1 FROM ${state.s}.rotations r WHERE ${satisfiesSql()} AND r.id = $4`, [
    account,
    req.requestedAt,
    req.terminateSessions,
    rotationId,
  ]);
  return (res.rowCount ?? 0) > 0;
}

/**
 * Why the request needs no rotation, or null. Only a rotation that did everything the request
 * asked for (see satisfiesSql) counts: a scheduled rotation does not satisfy an offboarding that
 * must end sessions. A scheduled request whose account is no longer due was done or rescheduled.
 * An unfinished rotation is always resumed.
 */
async function alreadySatisfied(state: StateStore, account: string, req: RotationRequest): Promise<Satisfied | null> {
  const res = await state.pool.query<{ running: boolean; done_id: string | null; done_sessions: number | null; not_due: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${state.s}.rotations WHERE account = $1 AND status = 'running') AS running,
            d.id AS done_id, d.sessions_ended AS done_sessions,
            COALESCE((SELECT next_due_at IS NULL OR next_due_at > now() FROM ${state.s}.accounts WHERE name = $1), false) AS not_due
       FROM (SELECT 1) one
       LEFT JOIN LATERAL (SELECT r.id, r.sessions_ended FROM ${state.s}.rotations r WHERE ${satisfiesSql()} ORDER BY r.started_at DESC LIMIT 1) d ON true`,
    [account, req.requestedAt, req.terminateSessions],
  );
  const row = res.rows[0];
  if (!row || row.running) return null;
  if (row.done_id) {
    const what = req.terminateSessions ? 'a rotation that started after this request already succeeded and ended the sessions' : 'a rotation that started after this request already succeeded';
    return { reason: what, rotationId: row.done_id, sessionsEnded: row.done_sessions };
  }
  if (req.kind === 'scheduled' && row.not_due) return { reason: 'no longer due', rotationId: null, sessionsEnded: null };
  return null;
}

/** What coolDown records about a job that gave up. */
export interface GaveUp {
  account: string;
  error: string;
  cooldownMs: number;
  actor: string;
  attempts: number;
  /** Retrying could not help, so the job stopped before its last attempt. */
  permanent: boolean;
  /** A scheduled job (else a person's or the API's request). */
  scheduled: boolean;
}

/**
 * The last attempt failed, or the error is permanent (retrying cannot help): say so loudly
 * (error log, audit event, account marked failed with the reason) and make the account due again
 * after the cool-down, so it is retried but never loops silently.
 */
export async function coolDown(app: App, f: GaveUp): Promise<Date> {
  const { account, error, cooldownMs, actor, attempts, permanent, scheduled } = f;
  const message = app.redactor.scrub(error);
  // A failed request (an offboarding that could not end sessions) must not push the account's
  // scheduled rotation later: it is due after the cool-down or its own due time, whichever is first.
  const res = await app.state.pool.query<{ next: Date }>(
    `UPDATE ${app.state.s}.accounts SET next_due_at = CASE WHEN $4::boolean OR next_due_at IS NULL
         THEN now() + ($2::double precision * interval '1 millisecond')
         ELSE LEAST(next_due_at, now() + ($2::double precision * interval '1 millisecond')) END,
       last_status = 'failed', last_error = $3, updated_at = now()
     WHERE name = $1 RETURNING next_due_at AS next`,
    [account, cooldownMs, message, scheduled],
  );
  const next = res.rows[0]?.next ?? new Date(Date.now() + cooldownMs);
  // Test-only: the chaos harness kills a worker here, with the account marked failed and no audit event yet.
  await failpoint('recording-failure', account);
  await app.state.audit({ account, kind: 'rotation.gave-up', actor, detail: { error: message, attempts, permanent, retryAt: next.toISOString() } });
  if (permanent) {
    app.log.error({ account, attempts, retryAt: next, error: message }, 'rotation failed with an error that retrying cannot fix; not retried until the cool-down');
  } else {
    app.log.error({ account, attempts, retryAt: next, error: message }, 'rotation failed after its last attempt; the account will be retried after the cool-down');
  }
  return next;
}

/** A result with nothing done yet, for the outcomes that never reached the engine. */
export function blankRunResult(account: string, target: string | null, patch: Partial<RunResult>): RunResult {
  return {
    account,
    target,
    outcome: 'failed',
    rotationId: null,
    role: null,
    oldCredentialExpiresAt: null,
    nextDueAt: null,
    sessionsEnded: null,
    resumed: false,
    error: null,
    warnings: [],
    detail: null,
    ...patch,
  };
}

function skipped(account: string, target: string | null, detail: string): RunResult {
  return blankRunResult(account, target, { outcome: 'skipped', detail });
}
