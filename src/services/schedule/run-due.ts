import { adoptNewAccounts } from '../../../jobs/account-adopt.js';
import { syncAccounts } from '../../../jobs/account-sync.js';
import { runInline } from '../../../jobs/inline-runner.js';
import type { App } from '../../core/app.js';
import { messageOf } from '../../core/errors.js';
import type { RunResult } from '../../core/rotation/run-result.js';
import { retireExpiredPgbouncerLogins } from './retire-expired-logins.js';
import { createPreviousRoleUsage } from '../usage/previous-role-usage.js';

/** Most accounts one run-due handles; the rest are due at the next run. */
const RUN_DUE_LIMIT = 100_000;

/**
 * The CronJob mode's work: sync the config's accounts, adopt the new `onboard: adopt` ones whose
 * secret logs in (then due one interval later, not now), retire expired previous logins from
 * PgBouncer, rotate every account due now in this process (no queue) under the configured limits,
 * then sample who still uses previous logins. A failed account stays due for the next run.
 */
export async function rotateDueAccounts(
  app: App,
  progress?: (done: number, total: number) => void,
): Promise<{ due: number; results: RunResult[] }> {
  await syncAccounts(app.state, app.config);
  await adoptNewAccounts(app, 'run-due');
  // Expired previous logins stop working through PgBouncer too, before due rotations run.
  await retireExpiredPgbouncerLogins(app);
  const { due, now } = await app.state.findDueAccounts(RUN_DUE_LIMIT);
  const results = await runInline(
    app,
    due.map((d) => d.name),
    { kind: 'scheduled', reason: 'scheduled', requestedBy: 'run-due', terminateSessions: false, requestedAt: now },
    progress,
  );
  // Then, as a worker's tick does: who still uses the previous logins (alerts, early expiry).
  const usage = await createPreviousRoleUsage(app)
    .tick()
    .catch((err: unknown) => {
      app.log.warn({ error: app.redactor.scrub(messageOf(err)) }, 'could not sample previous-role usage');
      return null;
    });
  // A previous login expired early just now (expireWhenUnused) stops working through PgBouncer too.
  if (usage && usage.expired > 0) await retireExpiredPgbouncerLogins(app);
  return { due: due.length, results };
}
