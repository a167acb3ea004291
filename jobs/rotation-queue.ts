import type { JobsOptions } from 'bullmq';
import type { AnyQueue, QueueBackend } from './queue-backend.js';
import {
  PRIORITY,
  ROTATION_QUEUE,
  requestJobId,
  scheduledJobId,
  type JobKind,
  type RotationJobData,
} from './rotation-job.js';
import type { RunResult } from '../src/core/rotation/run-result.js';
import type { DueAccount } from '../src/core/state/state-store.js';

// Producer side of the rotation queue: scheduled jobs (deterministic ids, removed when done so
// the next due time gets a fresh id), and requests from people or the API (unique ids, kept
// for a day so `--wait` and callers can read the outcome).

export interface RetrySettings {
  attempts: number;
}

export interface RequestOptions {
  kind: Exclude<JobKind, 'scheduled'>;
  reason: string | null;
  requestedBy: string;
  terminateSessions: boolean;
  requestedAt: number;
}

export type JobState = 'completed' | 'failed' | 'pending' | 'missing';

export interface JobOutcome {
  id: string;
  account: string;
  state: JobState;
  result: RunResult | null;
  failedReason: string | null;
  /** A failed job that stopped before its last attempt: its error was permanent. */
  permanent: boolean;
}

export class RotationQueue {
  readonly queue: AnyQueue<RotationJobData, RunResult>;
  /** The requests this producer queued, so a wait can queue again what the queue lost. */
  private readonly submitted = new Map<string, { name: string; data: RotationJobData; opts: JobsOptions }>();

  constructor(
    backend: QueueBackend,
    private readonly retry: RetrySettings,
  ) {
    this.queue = backend.queue<RotationJobData, RunResult>(ROTATION_QUEUE);
  }

  private base(): JobsOptions {
    return { attempts: this.retry.attempts, backoff: { type: 'pgrotate-jittered' } };
  }

  /** Queue scheduled rotations; an id already queued is left alone. */
  async enqueueScheduled(due: DueAccount[], requestedAt: number): Promise<void> {
    await this.queue.addBulk(
      due.map((d) => ({
        name: 'rotate',
        data: {
          account: d.name,
          kind: 'scheduled' as const,
          reason: 'scheduled',
          requestedBy: 'scheduler',
          priority: PRIORITY.scheduled,
          terminateSessions: false,
          requestedAt,
          dueAt: d.dueAt,
        },
        opts: {
          ...this.base(),
          jobId: scheduledJobId(d.name, d.dueAt),
          priority: PRIORITY.scheduled,
          removeOnComplete: true,
          removeOnFail: true,
        },
      })),
    );
  }

  /** Queue one rotation per account for a request; returns the job ids in order. */
  async enqueueRequest(accounts: string[], req: RequestOptions): Promise<string[]> {
    const jobs = accounts.map((account) => ({
      name: 'rotate',
      data: {
        account,
        kind: req.kind,
        reason: req.reason,
        requestedBy: req.requestedBy,
        priority: PRIORITY[req.kind],
        terminateSessions: req.terminateSessions,
        requestedAt: req.requestedAt,
        dueAt: null,
      },
      opts: {
        ...this.base(),
        jobId: requestJobId(req.kind, account),
        priority: PRIORITY[req.kind],
        removeOnComplete: { age: 86_400 },
        removeOnFail: { age: 86_400 },
      },
    }));
    await this.queue.addBulk(jobs);
    for (const j of jobs) this.submitted.set(j.opts.jobId, j);
    return jobs.map((j) => j.opts.jobId);
  }

  /** Current outcome of each job. */
  async outcomes(ids: string[]): Promise<JobOutcome[]> {
    return Promise.all(
      ids.map(async (id): Promise<JobOutcome> => {
        const account = id.split(':')[1] ?? '';
        // State first, then the job: a job read first may finish before its state is read, and
        // would then look finished without its result or failure reason (quick with a permanent error).
        const state = await this.queue.getJobState(id);
        if (state !== 'completed' && state !== 'failed') {
          return {
            id,
            account,
            state: state === 'unknown' ? 'missing' : 'pending',
            result: null,
            failedReason: null,
            permanent: false,
          };
        }
        const job = await this.queue.getJob(id);
        if (!job) return { id, account, state: 'missing', result: null, failedReason: null, permanent: false };
        if (state === 'completed')
          return { id, account, state, result: job.returnvalue, failedReason: null, permanent: false };
        return {
          id,
          account,
          state,
          result: null,
          failedReason: job.failedReason,
          permanent: job.attemptsMade < (job.opts.attempts ?? 1),
        };
      }),
    );
  }

  /**
   * Poll until every job completed or failed (or the timeout passed); returns the last outcomes.
   * The queue's database or Redis restarting does not end the wait: the workers go on with the
   * jobs, so the poll is retried until the timeout (found by the chaos run).
   */
  async waitFor(
    ids: string[],
    timeoutMs: number,
    onProgress?: (done: number, total: number) => void,
  ): Promise<JobOutcome[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let out: JobOutcome[];
      try {
        out = await this.outcomes(ids);
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      const done = out.filter((o) => o.state === 'completed' || o.state === 'failed').length;
      onProgress?.(done, ids.length);
      if (done === ids.length || Date.now() > deadline) {
        // A long-lived producer (the HTTP server's) must not keep every request it ever waited for.
        for (const id of ids) this.submitted.delete(id);
        return out;
      }
      // A Redis without persistence that restarted has lost the queued jobs: queue them again,
      // same id and request time (the worker skips one a later rotation already did; found by
      // the chaos run: an offboarding waited out its whole timeout).
      for (const o of out) {
        const job = o.state === 'missing' ? this.submitted.get(o.id) : undefined;
        if (job) await this.queue.add(job.name, job.data, job.opts).catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
