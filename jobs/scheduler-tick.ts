import type { Logger } from '../src/core/logging/logger.js';
import type { StateStore } from '../src/core/state/state-store.js';
import type { RotationQueue } from './rotation-queue.js';

// One scheduler tick: the due accounts, oldest first, from the next_due_at index (so its cost
// grows with the due accounts, not with the fleet), queued under deterministic job ids so that
// two racing ticks queue each scheduled rotation once. An account queued recently is not
// offered again until the re-offer interval passes; if it is, the queue ignores the same id.

export interface TickResult {
  due: number;
  ms: number;
}

/** Find due accounts and queue them. */
export async function schedulerTick(deps: {
  state: StateStore;
  queue: RotationQueue;
  log: Logger;
  limit: number;
  reofferMs: number;
}): Promise<TickResult> {
  const t0 = performance.now();
  // Accounts not queued within reofferMs (a tick that lost its jobs, e.g. to a Redis restart,
  // gets them offered again after that); racing ticks skip each other's rows.
  const { due, now } = await deps.state.claimDueAccounts(deps.limit, deps.reofferMs);
  if (due.length > 0) await deps.queue.enqueueScheduled(due, now);
  const ms = performance.now() - t0;
  if (due.length > 0) deps.log.info({ due: due.length, ms: Math.round(ms) }, 'scheduler tick queued due accounts');
  return { due: due.length, ms };
}
