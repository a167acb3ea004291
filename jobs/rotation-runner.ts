import type { App } from '../src/app/app-context.js';
import type { AccountConfig } from '../src/config/config-schema.js';
import { ConfigError, messageOf } from '../src/errors.js';
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
    return skipped(accountName, null, `not in this worker's config: ${messageOf(err)}`);
  }
  const slot = await deps.limiter.acquire(account.target, signal);
  let staleReason: string | null = null;
  let result: RotationResult;
  try {
    const guarded = Object.create(app.state) as StateStore;
    guarded.tryAcquireFence = async (name: string) => {
      const fence = await app.state.tryAcquireFence(name);
      if (!fence) return null;
      staleReason = await alreadySatisfied(app.state, name, req);
      if (staleReason) {
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
    result = await engine.rotate(account, { reason: req.reason ?? undefined, requestedBy: req.requestedBy, terminateSessions: req.terminateSessions });
  } finally {
    await slot.release();
  }
  if (staleReason) return skipped(account.name, account.target, staleReason);
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

/**
 * Why the request needs no rotation, or null. A rotation that started after the request and
 * succeeded has already done it; a scheduled request whose account is no longer due was done
 * or rescheduled. An unfinished rotation is always resumed.
 */
async function alreadySatisfied(state: StateStore, account: string, req: RotationRequest): Promise<string | null> {
  const res = await state.pool.query<{ running: boolean; done: boolean; not_due: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${state.s}.rotations WHERE account = $1 AND status = 'running') AS running,
            EXISTS (SELECT 1 FROM ${state.s}.rotations WHERE account = $1 AND status = 'succeeded' AND started_at >= to_timestamp($2::double precision / 1000)) AS done,
            COALESCE((SELECT next_due_at IS NULL OR next_due_at > now() FROM ${state.s}.accounts WHERE name = $1), false) AS not_due`,
    [account, req.requestedAt],
  );
  const row = res.rows[0];
  if (!row || row.running) return null;
  if (row.done) return 'a rotation that started after this request already succeeded';
  if (req.kind === 'scheduled' && row.not_due) return 'no longer due';
  return null;
}

/**
 * The last attempt failed: say so loudly (error log, audit event, account marked failed) and
 * make the account due again after the cool-down, so it is retried but never loops silently.
 */
export async function coolDown(app: App, account: string, error: string, cooldownMs: number, actor: string, attempts: number): Promise<Date> {
  const message = app.redactor.scrub(error);
  const res = await app.state.pool.query<{ next: Date }>(
    `UPDATE ${app.state.s}.accounts SET next_due_at = now() + ($2::double precision * interval '1 millisecond'),
       last_status = 'failed', last_error = $3, updated_at = now()
     WHERE name = $1 RETURNING next_due_at AS next`,
    [account, cooldownMs, message],
  );
  const next = res.rows[0]?.next ?? new Date(Date.now() + cooldownMs);
  await app.state.audit({ account, kind: 'rotation.gave-up', actor, detail: { error: message, attempts, retryAt: next.toISOString() } });
  app.log.error({ account, attempts, retryAt: next, error: message }, 'rotation failed after its last attempt; the account will be retried after the cool-down');
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
