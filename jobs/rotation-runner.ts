import type { App } from '../src/core/app.js';
import type { AccountConfig } from '../src/core/config/config-schema.js';
import { messageOf } from '../src/core/errors.js';
import { failpoint } from '../src/core/rotation/failpoint.js';
import type { RotationResult, SkipRotation } from '../src/core/rotation/rotation-engine.js';
import { rotationResultJson } from '../src/core/rotation/rotation-result-json.js';
import { blankRunResult, type RunResult } from '../src/core/rotation/run-result.js';
import { nextDueAfter, scheduleKey } from '../src/core/schedule/next-due.js';
import type { StateStore } from '../src/core/state/state-store.js';
import type { PerTargetLimiter } from './per-target-limiter.js';
import type { JobKind } from './rotation-job.js';

// Runs one requested rotation the same way for `worker` and `run-due`: under a per-target slot,
// through the app's engine (whose per-account fence is invariant I3), skipping work that a
// rotation started after the request already did. That check is the engine's afterFence hook,
// so it runs while the fence is held: a job delivered twice, or queued twice by racing ticks,
// cannot rotate the account twice.

export type { RunOutcome, RunResult } from '../src/core/rotation/run-result.js';

export interface RotationRequest {
  kind: JobKind;
  reason: string | null;
  requestedBy: string;
  terminateSessions: boolean;
  /** State-database time of the request, ms since epoch. */
  requestedAt: number;
}

export interface RunnerDeps {
  app: App;
  limiter: PerTargetLimiter;
}

/** Rotate one account for a request; never throws for rotation failures. */
export async function runRequestedRotation(
  deps: RunnerDeps,
  accountName: string,
  req: RotationRequest,
  signal?: AbortSignal,
): Promise<RunResult> {
  const { app } = deps;
  let account: AccountConfig;
  try {
    account = app.account(accountName);
  } catch (err) {
    const why = `not in this worker's config: ${messageOf(err)}`;
    // A scheduled job for a removed account has nothing to do; a person's request was not done.
    if (req.kind === 'scheduled') return blankRunResult(accountName, null, { outcome: 'skipped', detail: why });
    return blankRunResult(accountName, null, {
      error: { type: 'UnknownAccountError', message: app.redactor.scrub(why), permanent: true },
    });
  }
  const slot = await deps.limiter.acquire(account.target, signal);
  let result: RotationResult;
  try {
    const opts = {
      reason: req.reason ?? undefined,
      requestedBy: req.requestedBy,
      terminateSessions: req.terminateSessions,
      afterFence: () => alreadySatisfied(app.state, account.name, req),
    };
    result = await app.engine.rotate(account, opts);
    // A resumed rotation may have started before this request (its password may be one the
    // offboarded person saw) or without ending sessions: then the request still needs its own.
    if (result.outcome === 'succeeded' && result.resumed && result.rotationId && req.kind !== 'scheduled') {
      if (!(await app.state.rotationSatisfies(account.name, req, result.rotationId))) {
        const resumedRun = result;
        result = await app.engine.rotate(account, opts);
        // The resumed rotation ran with this request's --terminate-sessions: the sessions it ended
        // were ended for this request, and the report must count them (found by the chaos run).
        // (A skip reports the sessions of the rotation that did the work, as it always has.)
        if (result.outcome !== 'skipped' && resumedRun.sessionsEnded !== null && result.sessionsEnded !== null)
          result.sessionsEnded += resumedRun.sessionsEnded;
      }
    }
  } finally {
    await slot.release();
  }
  if (result.outcome === 'succeeded' && result.rotationId) {
    // Plan the next rotation with the stable spread offset and remember the schedule it used.
    const schedule = account.schedule ?? app.config.defaults.schedule;
    const next = nextDueAfter(schedule, new Date(), account.name);
    await app.state.planNextDue(account.name, result.rotationId, next, scheduleKey(schedule));
    result.nextDueAt = next;
  }
  return rotationResultJson(result);
}

/**
 * Why the request needs no rotation, or null. Only a rotation that did everything the request
 * asked for counts (it succeeded, started after the request, and ended sessions and expired the
 * previous login when the request ends sessions): a scheduled rotation does not satisfy an
 * offboarding that must end sessions. A scheduled request whose account is no longer due was
 * done or rescheduled. An unfinished rotation is always resumed.
 */
async function alreadySatisfied(
  state: StateStore,
  account: string,
  req: RotationRequest,
): Promise<SkipRotation | null> {
  const row = await state.requestStanding(account, req);
  if (!row || row.running) return null;
  if (row.doneId) {
    const what = req.terminateSessions
      ? 'a rotation that started after this request already succeeded and ended the sessions'
      : 'a rotation that started after this request already succeeded';
    return { reason: what, rotationId: row.doneId, sessionsEnded: row.doneSessionsEnded };
  }
  if (req.kind === 'scheduled' && row.notDue) return { reason: 'no longer due', rotationId: null, sessionsEnded: null };
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
  const next =
    (await app.state.coolDownAccount(account, cooldownMs, message, scheduled)) ?? new Date(Date.now() + cooldownMs);
  // Test-only: the chaos harness kills a worker here, with the account marked failed and no audit event yet.
  await failpoint('recording-failure', account);
  await app.state.audit({
    account,
    kind: 'rotation.gave-up',
    actor,
    detail: { error: message, attempts, permanent, retryAt: next.toISOString() },
  });
  if (permanent) {
    app.log.error(
      { account, attempts, retryAt: next, error: message },
      'rotation failed with an error that retrying cannot fix; not retried until the cool-down',
    );
  } else {
    app.log.error(
      { account, attempts, retryAt: next, error: message },
      'rotation failed after its last attempt; the account will be retried after the cool-down',
    );
  }
  return next;
}
