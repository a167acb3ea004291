/**
 * Wait for `work` to settle, but no longer than `ms`: true when it settled (fulfilled or
 * rejected) in time, false when the time ran out first. Never rejects; `work` carries on.
 */
export async function settleWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
    timer.unref();
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Milliseconds left until the wall-clock time `by` (ms since epoch), never negative. */
export function msUntil(by: number): number {
  return Math.max(0, by - Date.now());
}
