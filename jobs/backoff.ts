/** Retry delay settings: exponential from `baseMs`, capped at `capMs`, with jitter. */
export interface BackoffSettings {
  baseMs: number;
  capMs: number;
}

/**
 * Delay before retry number `attemptsMade` (1 after the first failure): base * 2^(n-1), capped,
 * then "equal jitter" (a random point in the upper half) so retries of many accounts that
 * failed together (a database restart) do not return together.
 */
export function retryDelay(attemptsMade: number, s: BackoffSettings, random: () => number = Math.random): number {
  const exp = Math.min(s.capMs, s.baseMs * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}
