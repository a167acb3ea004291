import { createHash } from 'node:crypto';

// Stable per-account offsets, so that accounts sharing a schedule are due at different times
// and a fleet of thousands never rotates in the same minute. The offset depends only on the
// account name, so it is the same in every process and across restarts.

/** Share of an `every` interval used to spread due times. */
export const SPREAD_FRACTION = 0.1;
/** Upper bound of the spread for long intervals. */
export const SPREAD_CAP_MS = 24 * 3_600_000;
/** Window of a cron schedule that gives none. */
export const DEFAULT_CRON_WINDOW_MS = 3_600_000;

/** A number in [0, 1) derived from the account name. */
export function stableFraction(account: string): number {
  const digest = createHash('sha256').update(`pgrotate-spread:${account}`).digest();
  // 48 bits are plenty and exact in a double.
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/** The account's offset within a spread window of `windowMs` milliseconds, in [0, windowMs). */
export function spreadOffset(account: string, windowMs: number): number {
  if (windowMs <= 0) return 0;
  return Math.floor(stableFraction(account) * windowMs);
}

/** Spread window of an `every` interval: a tenth of it, capped at a day. */
export function spreadWindowForInterval(everyMs: number): number {
  return Math.min(Math.floor(everyMs * SPREAD_FRACTION), SPREAD_CAP_MS);
}
