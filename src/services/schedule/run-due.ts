import { adoptNewAccounts } from '../../../jobs/account-adopt.js';
import { syncAccounts } from '../../../jobs/account-sync.js';
import { runInline } from '../../../jobs/inline-runner.js';
import type { App } from '../../core/app.js';
import type { RunResult } from '../../core/rotation/run-result.js';

/** Most accounts one run-due handles; the rest are due at the next run. */
const RUN_DUE_LIMIT = 100_000;

/**
 * The CronJob mode's work: sync the config's accounts, adopt the new `onboard: adopt` ones whose
 * secret logs in (they are then due one interval later, not now), then rotate every account due now in this
 * process (no queue) under the configured limits. A failed account stays due for the next run.
 */
export async function rotateDueAccounts(
  app: App,
  progress?: (done: number, total: number) => void,
): Promise<{ due: number; results: RunResult[] }> {
  await syncAccounts(app.state, app.config);
  await adoptNewAccounts(app, 'run-due');
  const { due, now } = await app.state.findDueAccounts(RUN_DUE_LIMIT);
  const results = await runInline(
    app,
    due.map((d) => d.name),
    { kind: 'scheduled', reason: 'scheduled', requestedBy: 'run-due', terminateSessions: false, requestedAt: now },
    progress,
  );
  return { due: due.length, results };
}
