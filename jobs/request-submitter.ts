import type { App } from '../src/app/app-context.js';
import { failedResult } from '../src/cli/run-result-output.js';
import { RotationQueue, type RequestOptions } from './rotation-queue.js';
import type { RunResult } from './rotation-runner.js';

export interface Submitted {
  jobIds: string[];
  /** Outcomes, when the caller waited for them. */
  results: RunResult[] | null;
}

/** Queue a request's rotations for the workers and, if asked, wait for their outcomes. */
export async function submitRequest(
  app: App,
  accounts: string[],
  req: RequestOptions,
  wait: { timeoutMs: number; progress?: (done: number, total: number) => void } | null,
): Promise<Submitted> {
  // bullmq (and ioredis) load only when a request is really queued: `rotate` without a queue never needs them.
  const { createQueueBackend } = await import('./queue-backend.js');
  const backend = createQueueBackend(app.config, app.stateCredential);
  const queue = new RotationQueue(backend, { attempts: app.config.queue?.attempts ?? 5 });
  try {
    const jobIds = await queue.enqueueRequest(accounts, req);
    app.log.info({ kind: req.kind, jobs: jobIds.length }, 'rotation requests queued');
    if (!wait) return { jobIds, results: null };
    const outcomes = await queue.waitFor(jobIds, wait.timeoutMs, wait.progress);
    const results = outcomes.map((o) => {
      if (o.state === 'completed' && o.result) return o.result;
      if (o.state === 'failed') return failedResult(o.account, o.failedReason ?? 'failed', o.permanent);
      return failedResult(o.account, `job ${o.id} did not finish within ${Math.round(wait.timeoutMs / 1000)} s (is a worker running?)`);
    });
    return { jobIds, results };
  } finally {
    await queue.close().catch(() => undefined);
    await backend.close();
  }
}
