import { UnrecoverableError, type Job } from 'bullmq';
import type { App } from '../src/core/app.js';
import { queueSettings, type QueueConfig } from '../src/core/config/config-schema.js';
import { msUntil, settleWithin } from '../src/core/concurrency/settle-within.js';
import { messageOf } from '../src/core/errors.js';
import type { Logger } from '../src/core/logging/logger.js';
import { adoptNewAccounts } from './account-adopt.js';
import { syncAccounts } from './account-sync.js';
import { retryDelay } from './backoff.js';
import { PerTargetLimiter } from './per-target-limiter.js';
import type { AnyQueue, AnyWorker, QueueBackend } from './queue-backend.js';
import { TICK_QUEUE, TICK_SCHEDULER_ID, ROTATION_QUEUE, type RotationJobData } from './rotation-job.js';
import { RotationQueue } from './rotation-queue.js';
import { coolDown, runRequestedRotation, type RunResult } from './rotation-runner.js';
import { schedulerTick, type TickResult } from './scheduler-tick.js';
import { stateConnectionConfig } from './state-connection.js';

// The long-running worker: a BullMQ job scheduler fires a tick on one worker at a time; ticks
// queue due accounts; rotation jobs run with a global concurrency and a per-target limit.
// Failed attempts are retried with capped, jittered exponential backoff; after the last one
// the account is marked failed and cooled down. Stopping waits a bounded time for running
// rotations (queue.shutdownTimeout); one cut short is resumable (its job lock lapses and another
// worker resumes it from its recorded step).

export interface RunningWorker {
  /**
   * Stop taking jobs, wait up to the shutdown timeout for running ones, close everything, all by
   * `by` (ms since epoch). `drained` false: rotations were still running and nothing was closed;
   * the process must exit now, leaving them to resume elsewhere.
   */
  stop(by: number): Promise<{ drained: boolean }>;
}

type TickData = Record<string, never>;

/** Work a service runs on every scheduler tick, after the due accounts are queued (one worker at a time). */
export type TickHook = () => Promise<unknown>;

/** Start the scheduler and the rotation worker for this process. */
export async function startRotationWorker(
  app: App,
  backend: QueueBackend,
  afterTick?: TickHook,
): Promise<RunningWorker> {
  const q = queueSettings(app.config);
  const log = app.log.child({ component: 'worker' });
  const synced = await syncAccounts(app.state, app.config);
  log.info(synced, 'accounts synced with the state database');
  // Before the first tick: an account still to adopt has no due time until this decides.
  const adoption = await adoptNewAccounts(app, 'worker');
  if (adoption.adopted.length + adoption.refused.length > 0)
    log.info({ adopted: adoption.adopted.length, refused: adoption.refused.length }, 'onboard: adopt');

  const limiter = new PerTargetLimiter({
    connection: stateConnectionConfig(app.config, 'pgrotate-limiter', app.stateCredential),
    schema: app.config.state.schema,
    perTarget: app.config.limits.perTarget,
    log,
  });
  const rotations = new RotationQueue(backend, { attempts: q.attempts });
  const ticks: AnyQueue<TickData, TickResult> = backend.queue<TickData, TickResult>(TICK_QUEUE);
  const abort = new AbortController();
  const scheduler = await keepTickScheduled(app, backend, ticks, log, q);

  const workerOpts = { lockDuration: q.lockDuration, stalledInterval: q.lockDuration, maxStalledCount: 3 };
  const tickWorker = startTickWorker({ app, backend, rotations, scheduler, log, q, afterTick }, workerOpts);
  // One redaction scope per job: the passwords its rotation handled are forgotten once the
  // outcome has been logged and handed to the queue.
  const jobs: JobDeps = { app, limiter, log, q, signal: abort.signal };
  const rotationWorker: AnyWorker<RotationJobData, RunResult> = backend.worker<RotationJobData, RunResult>(
    ROTATION_QUEUE,
    (job) => app.redactor.scoped(() => runRotationJob(jobs, job)),
    {
      ...workerOpts,
      concurrency: app.config.limits.concurrency,
      settings: {
        backoffStrategy: (attemptsMade: number) => retryDelay(attemptsMade, { baseMs: q.backoff, capMs: q.backoffCap }),
      },
    },
  );
  for (const w of [tickWorker, rotationWorker] as Array<{ on(event: 'error', fn: (err: Error) => void): unknown }>) {
    w.on('error', (err: Error) =>
      log.warn({ error: app.redactor.scrub(messageOf(err)) }, 'queue connection error; retrying'),
    );
  }
  log.info(
    { backend: backend.kind, concurrency: app.config.limits.concurrency, perTarget: app.config.limits.perTarget },
    'worker started',
  );
  return {
    stop(by) {
      scheduler.stop();
      abort.abort();
      return drainAndClose({ workers: [tickWorker, rotationWorker], queues: [rotations, ticks], limiter, log, q }, by);
    },
  };
}

/** The worker of the tick queue: one tick at a time queues the accounts that are due. */
function startTickWorker(
  deps: {
    app: App;
    backend: QueueBackend;
    rotations: RotationQueue;
    scheduler: { ticked: () => void };
    log: Logger;
    q: QueueConfig;
    afterTick?: TickHook | undefined;
  },
  workerOpts: { lockDuration: number; stalledInterval: number; maxStalledCount: number },
): AnyWorker<TickData, TickResult> {
  const { app, backend, rotations, scheduler, log, q, afterTick } = deps;
  return backend.worker<TickData, TickResult>(
    TICK_QUEUE,
    async () => {
      scheduler.ticked();
      // Re-offer queued accounts after ten ticks: enough for a normal backlog, and a queue that
      // lost its data (Redis without persistence) gets them back soon.
      const result = await schedulerTick({
        state: app.state,
        queue: rotations,
        log,
        limit: q.tickBatch,
        reofferMs: 10 * q.tickInterval,
      });
      // The tick's own work is done; a failing hook must not make the queue retry it.
      if (afterTick)
        await afterTick().catch((err: unknown) =>
          log.warn({ error: app.redactor.scrub(messageOf(err)) }, 'work after the scheduler tick failed'),
        );
      return result;
    },
    { ...workerOpts, concurrency: 1 },
  );
}

/**
 * Close the workers (they finish their running jobs) within the shutdown timeout, then the
 * queues and the limiter, all by `by`. `drained` false: rotations were still running and
 * nothing else was closed.
 */
async function drainAndClose(
  parts: {
    workers: Array<{ close(): Promise<void> }>;
    queues: Array<{ close(): Promise<void> }>;
    limiter: PerTargetLimiter;
    log: Logger;
    q: QueueConfig;
  },
  by: number,
): Promise<{ drained: boolean }> {
  const { log, q } = parts;
  const closing = Promise.all(parts.workers.map((w) => w.close()));
  const drained = await settleWithin(closing, Math.min(q.shutdownTimeout, msUntil(by)));
  if (!drained) {
    // Stop waiting. Closing the queue, the limiter or (later) the pools would wait for those
    // rotations again, or fail them half-way; exiting is a crash they are built to survive:
    // their records stay running at the last durable step, the process's connections (and
    // with them the fence and slot locks) close, and the jobs' locks lapse after lockDuration.
    log.warn(
      { timeoutMs: q.shutdownTimeout },
      'rotations still running at the shutdown timeout; exiting, they will resume on another worker',
    );
    return { drained: false };
  }
  log.info('worker stopped');
  await settleWithin(Promise.all(parts.queues.map((x) => x.close())), msUntil(by));
  await settleWithin(parts.limiter.close(), msUntil(by));
  return { drained: true };
}

/**
 * Register the tick's job scheduler, and register it again after a reconnect or when no tick
 * came for three intervals (Redis without persistence forgets it on restart). `ticked` records
 * a tick; `stop` ends the watchdog.
 */
async function keepTickScheduled(
  app: App,
  backend: QueueBackend,
  ticks: AnyQueue<TickData, TickResult>,
  log: Logger,
  q: QueueConfig,
): Promise<{ ticked: () => void; stop: () => void }> {
  let lastTick = Date.now();
  const upsertScheduler = async () => {
    try {
      await ticks.upsertJobScheduler(
        TICK_SCHEDULER_ID,
        { every: q.tickInterval },
        { name: 'tick', data: {}, opts: { removeOnComplete: true, removeOnFail: true } },
      );
    } catch (err) {
      log.warn({ error: app.redactor.scrub(messageOf(err)) }, 'could not register the scheduler tick; will retry');
    }
  };
  await upsertScheduler();
  backend.onReconnect(() => void upsertScheduler());
  const watchdog = setInterval(() => {
    if (Date.now() - lastTick > 3 * q.tickInterval) {
      lastTick = Date.now();
      void upsertScheduler();
    }
  }, q.tickInterval);
  watchdog.unref();
  return { ticked: () => void (lastTick = Date.now()), stop: () => clearInterval(watchdog) };
}

interface JobDeps {
  app: App;
  limiter: PerTargetLimiter;
  log: Logger;
  q: QueueConfig;
  /** Aborted when the worker stops. */
  signal: AbortSignal;
}

/**
 * Run one rotation job. A failure (or a requested rotation that found the account busy) throws
 * so the queue retries it with backoff; the last attempt, or a permanent error, cools the
 * account down first (a permanent one throws UnrecoverableError: no retries left to wait for).
 */
async function runRotationJob(
  { app, limiter, log, q, signal }: JobDeps,
  job: Job<RotationJobData, RunResult>,
): Promise<RunResult> {
  const data = job.data;
  const result = await runRequestedRotation({ app, limiter }, data.account, data, signal);
  // A scheduled job that is finished for good gives back the tick's claim on the account, so
  // its next due time (or the cool-down retry) is queued by the next tick.
  const releaseScheduledClaim = async () => {
    if (data.kind === 'scheduled') await app.state.releaseClaim(data.account, data.requestedAt);
  };
  const retryable = result.outcome === 'failed' || (result.outcome === 'busy' && data.kind !== 'scheduled');
  if (!retryable) {
    await releaseScheduledClaim();
    return result;
  }
  const message = result.error?.message ?? `account ${data.account}: ${result.outcome}`;
  const attempts = job.opts.attempts ?? 1;
  // A missing role or GRANT, a refused permission: fail now, not after minutes of backoff.
  const permanent = result.outcome === 'failed' && result.error?.permanent === true;
  if (permanent || job.attemptsMade + 1 >= attempts) {
    await coolDown(app, {
      account: data.account,
      error: message,
      cooldownMs: q.cooldown,
      actor: data.requestedBy,
      attempts: job.attemptsMade + 1,
      permanent,
      scheduled: data.kind === 'scheduled',
    });
    await releaseScheduledClaim();
  } else {
    log.warn(
      { account: data.account, attempt: job.attemptsMade + 1, of: attempts, error: message },
      'rotation attempt failed; will retry',
    );
  }
  if (permanent) throw new UnrecoverableError(app.redactor.scrub(message));
  throw new Error(app.redactor.scrub(message));
}
