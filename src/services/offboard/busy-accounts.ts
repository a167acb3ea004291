import type { App } from '../../core/app.js';
import type { RunResult } from '../../core/rotation/run-result.js';

// An account is `busy` when another rotation holds its fence: another process's offboarding of
// the same person, a worker's scheduled job, a `rotate` by hand. That rotation may well do what
// the request asks, so the request does not fail for it: it waits for the fence, then tries
// again with its original time. The engine's check under the fence then reports it `skipped`,
// naming that rotation, when it started after the request and did everything asked (ended the
// sessions too); otherwise the request runs its own rotation. Nothing is claimed that did not
// happen, and the wait is bounded by the request's timeout.

const FIRST_POLL_MS = 100;
const MAX_POLL_MS = 1000;

/** Is the account's fence free right now? Takes it and gives it back at once. */
async function fenceFree(app: App, account: string): Promise<boolean> {
  const fence = await app.state.tryAcquireFence(account);
  if (!fence) return false;
  await fence.release();
  return true;
}

/**
 * Results with every `busy` one replaced by the outcome of trying again (`retry`) once its
 * account's fence is free; still busy only when the fence stayed taken until `deadline` (ms since
 * epoch). `retry` runs the request again for the accounts given, in order.
 */
export async function settleBusy(
  app: App,
  results: RunResult[],
  deadline: number,
  retry: (accounts: string[]) => Promise<RunResult[]>,
): Promise<RunResult[]> {
  const settled = [...results];
  let pollMs = FIRST_POLL_MS;
  for (;;) {
    const busy = settled.flatMap((r, i) => (r.outcome === 'busy' ? [i] : []));
    if (busy.length === 0 || Date.now() >= deadline) return settled;
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
    pollMs = Math.min(MAX_POLL_MS, pollMs * 2);
    const free: number[] = [];
    for (const i of busy) if (await fenceFree(app, (settled[i] as RunResult).account)) free.push(i);
    if (free.length === 0) continue;
    const again = await retry(free.map((i) => (settled[i] as RunResult).account));
    free.forEach((i, k) => {
      const r = again[k];
      if (r) settled[i] = r;
    });
  }
}
