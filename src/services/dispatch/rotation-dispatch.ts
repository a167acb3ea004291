import { runInline } from '../../../jobs/inline-runner.js';
import type { QueueBackend } from '../../../jobs/queue-backend.js';
import { RotationQueue, type JobOutcome } from '../../../jobs/rotation-queue.js';
import type { RotationRequest } from '../../../jobs/rotation-runner.js';
import type { App } from '../../core/app.js';
import { queueSettings } from '../../core/config/config-schema.js';
import { runBounded } from '../../core/concurrency/run-bounded.js';
import { rotationResultJson } from '../../core/rotation/rotation-result-json.js';
import { failedResult, type RunResult } from '../../core/rotation/run-result.js';

// The one place that decides whether requested rotations run in this process or go to the
// workers (when the config has a queue), builds the queue for it (once, on first use), and maps
// queued jobs' outcomes to results. Used by `rotate`, `offboard` and the HTTP API.

/**
 * A request from a person or an API caller (scheduled work is the scheduler's). Its time is
 * taken from the state database's clock when it is dispatched.
 */
export type DispatchRequest = Omit<RotationRequest, 'kind' | 'requestedAt'> & {
  kind: Exclude<RotationRequest['kind'], 'scheduled'>;
  /**
   * The request's time when it was taken earlier (a request tried again after waiting keeps its
   * original time, so a rotation that started after it still satisfies it); else taken now.
   */
  requestedAt?: number | undefined;
};

export interface DispatchOptions {
  /** Wait for queued rotations' outcomes this long; null: return once queued. Rotations run here are always awaited. */
  wait: { timeoutMs: number } | null;
  /** Rotations finished so far (of those run here, or of the queued ones awaited). */
  progress?: ((done: number, total: number) => void) | undefined;
  /**
   * The CLI's `rotate` run here: straight through the engine with this concurrency (a resumed
   * rotation counts as done; a dry run is possible and never queued). Without it, rotations run
   * here as requested rotations, like a worker's.
   */
  direct?: { concurrency: number; dryRun: boolean } | undefined;
}

export interface Dispatched {
  /** Queue job ids, in account order; null when the rotations run in this process. */
  jobIds: string[] | null;
  /** One result per account, in order, once all finished or the wait timed out; null when queued without waiting. */
  results: Promise<RunResult[]> | null;
}

/** Requested rotations: run here, or queued for the workers when the config has a queue. */
export class RotationDispatch {
  private backend: QueueBackend | null = null;
  private rotationQueue: RotationQueue | null = null;
  /** Waits on queued jobs still running; they keep the queue open. */
  private readonly waits = new Set<Promise<unknown>>();

  constructor(private readonly app: App) {}

  /** Whether requests go to the workers (the config has a queue). */
  get queued(): boolean {
    return this.app.config.queue !== undefined;
  }

  /** Rotate `accounts` (names) for `request`: here, or through the queue. */
  async request(accounts: string[], request: DispatchRequest, opts: DispatchOptions): Promise<Dispatched> {
    if (opts.direct && (!this.queued || opts.direct.dryRun))
      return { jobIds: null, results: this.runDirect(accounts, request, opts.direct, opts.progress) };
    // Requests and rotations are compared on the state database's clock (see rotation-runner).
    const timed = { ...request, requestedAt: request.requestedAt ?? (await this.app.state.now()) };
    if (!this.queued) return { jobIds: null, results: runInline(this.app, accounts, timed, opts.progress) };
    const queue = await this.queue();
    const jobIds = await queue.enqueueRequest(accounts, timed);
    this.app.log.info({ kind: request.kind, jobs: jobIds.length }, 'rotation requests queued');
    if (!opts.wait) return { jobIds, results: null };
    const timeoutMs = opts.wait.timeoutMs;
    const results = queue
      .waitFor(jobIds, timeoutMs, opts.progress)
      .then((outcomes) => outcomes.map((o) => resultOfJob(o, timeoutMs)));
    const tracked = results.catch(() => undefined).finally(() => this.waits.delete(tracked));
    this.waits.add(tracked);
    return { jobIds, results };
  }

  /** Jobs waiting, delayed, prioritised or running (metrics, readiness); only with a queue. */
  readonly depth = async (): Promise<number> => {
    const counts = await (
      await this.queue()
    ).queue.getJobCounts('waiting', 'delayed', 'prioritized', 'active', 'waiting-children');
    return Object.values(counts).reduce((a, b) => a + b, 0);
  };

  /**
   * Close the queue. Waits still running (an API offboarding answered 202) keep it until they
   * end, and closing does not wait for them: a server stopping on SIGTERM stops at once.
   */
  async close(): Promise<void> {
    const pending = [...this.waits];
    if (pending.length > 0) {
      void Promise.allSettled(pending).then(() => this.closeQueue());
      return;
    }
    await this.closeQueue();
  }

  private async closeQueue(): Promise<void> {
    const queue = this.rotationQueue;
    const backend = this.backend;
    this.rotationQueue = null;
    this.backend = null;
    await queue?.close().catch(() => undefined);
    await backend?.close().catch(() => undefined);
  }

  /** The CLI's `rotate` here: each account straight through the engine. */
  private runDirect(
    accounts: string[],
    request: DispatchRequest,
    direct: NonNullable<DispatchOptions['direct']>,
    progress: DispatchOptions['progress'],
  ): Promise<RunResult[]> {
    const rotateOpts = {
      reason: request.reason ?? undefined,
      requestedBy: request.requestedBy,
      dryRun: direct.dryRun,
      terminateSessions: request.terminateSessions,
    };
    return runBounded(
      accounts,
      direct.concurrency,
      async (name) => rotationResultJson(await this.app.engine.rotate(this.app.account(name), rotateOpts)),
      progress,
    );
  }

  private async queue(): Promise<RotationQueue> {
    if (!this.rotationQueue) {
      // bullmq (and ioredis) load only when a request really goes to a queue: `rotate` and
      // `offboard` without one never need them.
      const { createQueueBackend } = await import('../../../jobs/queue-backend.js');
      if (this.rotationQueue) return this.rotationQueue; // another call built it meanwhile
      this.backend = createQueueBackend(this.app.config, this.app.stateCredential);
      this.rotationQueue = new RotationQueue(this.backend, { attempts: queueSettings(this.app.config).attempts });
    }
    return this.rotationQueue;
  }
}

/** A queued job's outcome as a result: its return value, or a failure saying why there is none. */
export function resultOfJob(o: JobOutcome, timeoutMs: number): RunResult {
  if (o.state === 'completed' && o.result) return o.result;
  if (o.state === 'failed') return failedResult(o.account, o.failedReason ?? 'failed', o.permanent);
  return failedResult(
    o.account,
    `job ${o.id} did not finish within ${Math.round(timeoutMs / 1000)} s (is a worker running?)`,
  );
}
