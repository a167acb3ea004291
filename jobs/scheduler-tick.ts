import type { Logger } from '../src/logging/logger.js';
import type { StateStore } from '../src/state/state-store.js';
import type { RotationQueue } from './rotation-queue.js';

// One scheduler tick: the due accounts, oldest first, from the next_due_at index (so its cost
// grows with the due accounts, not with the fleet), queued under deterministic job ids so that
// two racing ticks queue each scheduled rotation once. An account queued recently is not
// offered again until the re-offer interval passes; if it is, the queue ignores the same id.

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

/**
 * Claim due accounts for queueing: those not queued within `reofferMs` (a tick that lost its
 * jobs, e.g. to a Redis restart, gets them offered again after that). Racing ticks skip each
 * other's rows, and the deterministic job ids catch whatever slips through.
 */
export async function claimDueAccounts(state: StateStore, limit: number, reofferMs: number): Promise<{ due: DueAccount[]; now: number }> {
  const res = await state.pool.query<{ name: string; due_ms: string; now_ms: string }>(
    `WITH due AS (
       SELECT name FROM ${state.s}.accounts
        WHERE next_due_at <= now() AND (queued_at IS NULL OR queued_at < now() - $2::double precision * interval '1 millisecond')
        ORDER BY next_due_at LIMIT $1
        FOR UPDATE SKIP LOCKED)
     UPDATE ${state.s}.accounts a SET queued_at = now() FROM due WHERE a.name = due.name
     RETURNING a.name, floor(extract(epoch FROM a.next_due_at) * 1000)::bigint AS due_ms, floor(extract(epoch FROM now()) * 1000)::bigint AS now_ms`,
    [limit, reofferMs],
  );
  const now = res.rows[0] ? Number(res.rows[0].now_ms) : Date.now();
  return { due: res.rows.map((r) => ({ name: r.name, dueAt: Number(r.due_ms) })), now };
}

export interface TickResult {
  due: number;
  ms: number;
}

/** Find due accounts and queue them. */
export async function schedulerTick(deps: { state: StateStore; queue: RotationQueue; log: Logger; limit: number; reofferMs: number }): Promise<TickResult> {
  const t0 = performance.now();
  const { due, now } = await claimDueAccounts(deps.state, deps.limit, deps.reofferMs);
  if (due.length > 0) await deps.queue.enqueueScheduled(due, now);
  const ms = performance.now() - t0;
  if (due.length > 0) deps.log.info({ due: due.length, ms: Math.round(ms) }, 'scheduler tick queued due accounts');
  return { due: due.length, ms };
}
