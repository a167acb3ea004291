import type { StateStore } from '../src/state/state-store.js';

// The other half of the scheduler's claim (claimDueAccounts sets accounts.queued_at so racing
// ticks do not queue an account twice). When a scheduled job is finished for good, whatever its
// outcome, the claim is released, so the account's next due time (a short schedule, a cron
// window, the cool-down after a failure) is queued by the next tick instead of waiting out the
// re-offer interval meant for queues that lost their jobs.

/**
 * Release the claim a tick made at `claimedAt` (ms since epoch, state-database clock: the
 * job's requestedAt). A newer claim (a later tick queued the account again) is left alone.
 */
export async function releaseClaim(state: StateStore, account: string, claimedAt: number): Promise<void> {
  // queued_at has microseconds, claimedAt is floored to the millisecond: same claim if within it.
  await state.pool.query(`UPDATE ${state.s}.accounts SET queued_at = NULL WHERE name = $1 AND queued_at < to_timestamp(($2::double precision + 1) / 1000)`, [
    account,
    claimedAt,
  ]);
}
