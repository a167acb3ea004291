import type { Logger } from '../src/logging/logger.js';
import type { StateStore } from '../src/state/state-store.js';
import type { RotationQueue } from './rotation-queue.js';

// One scheduler tick: the due accounts, oldest first, from the next_due_at index (so its cost
// grows with the due accounts, not with the fleet), queued under deterministic job ids so that
// two racing ticks queue each scheduled rotation once. Accounts still queued are simply
// offered again with the same id, which the queue ignores.

export interface DueAccount {
  name: string;
  /** next_due_at in ms since epoch (the job id's second part). */
  dueAt: number;
}

/** The due accounts (at most `limit`) and the state database's clock. */
export async function findDueAccounts(state: StateStore, limit: number): Promise<{ due: DueAccount[]; now: number }> {
  const res = await state.pool.query<{ name: string; due_ms: string; now_ms: string }>(
    `SELECT name, floor(extract(epoch FROM next_due_at) * 1000)::bigint AS due_ms, floor(extract(epoch FROM now()) * 1000)::bigint AS now_ms
       FROM ${state.s}.accounts WHERE next_due_at <= now() ORDER BY next_due_at LIMIT $1`,
    [limit],
  );
  const now = res.rows[0] ? Number(res.rows[0].now_ms) : Date.now();
  return { due: res.rows.map((r) => ({ name: r.name, dueAt: Number(r.due_ms) })), now };
}

export interface TickResult {
  due: number;
  ms: number;
}

/** Find due accounts and queue them. */
export async function schedulerTick(deps: { state: StateStore; queue: RotationQueue; log: Logger; limit: number }): Promise<TickResult> {
  const t0 = performance.now();
  const { due, now } = await findDueAccounts(deps.state, deps.limit);
  if (due.length > 0) await deps.queue.enqueueScheduled(due, now);
  const ms = performance.now() - t0;
  if (due.length > 0) deps.log.info({ due: due.length, ms: Math.round(ms) }, 'scheduler tick queued due accounts');
  return { due: due.length, ms };
}
