import { createQueueBackend } from '../../../jobs/queue-backend.js';
import { startRotationWorker } from '../../../jobs/rotation-worker.js';
import type { App } from '../../core/app.js';
import { msUntil, settleWithin } from '../../core/concurrency/settle-within.js';
import { queueSettings } from '../../core/config/config-schema.js';
import { AuditScheduler } from '../audit/audit-scheduler.js';
import { createPreviousRoleUsage } from '../usage/previous-role-usage.js';
import { retireExpiredPgbouncerLogins } from './retire-expired-logins.js';

/** A running worker: the queue's scheduler and rotation jobs, and the scheduled security audits. */
export interface RunningWorker {
  /**
   * Take no new jobs, give the ones in flight up to queue.shutdownTimeout, stop the audits, close
   * the queue, all by `by` (ms since epoch). `drained` false: work was cut short; exit now.
   */
  stop(by: number): Promise<{ drained: boolean }>;
}

/** Start the rotation worker on the configured queue backend (its ticks also sample previous-role usage), and the scheduled audits (`audit: { every }`). */
export async function startWorker(app: App): Promise<RunningWorker> {
  const backend = createQueueBackend(app.config, app.stateCredential);
  // Who still uses previous logins: sampled on every tick, which one worker at a time runs.
  const usage = createPreviousRoleUsage(app);
  // Then the expired previous logins (at the end of grace, or early) stop working through PgBouncer.
  const retired = new Map<string, string>();
  const worker = await startRotationWorker(app, backend, async () => {
    await usage.tick();
    await retireExpiredPgbouncerLogins(app, new Date(), retired);
  });
  // Scheduled security audits, alerting on drift between runs.
  const audits = new AuditScheduler({
    config: app.config,
    state: app.state,
    runs: app.auditRuns,
    targets: app.targets,
    alerts: app.alerts,
    log: app.log.child({ component: 'audit' }),
    redactor: app.redactor,
  });
  audits.start();
  return {
    async stop(by) {
      // An audit run in flight is read-only: it gets the same wait as the rotations, no more.
      const auditsStopped = settleWithin(
        audits.stop(),
        Math.min(queueSettings(app.config).shutdownTimeout, msUntil(by)),
      );
      const { drained } = await worker.stop(by);
      const quiet = (await auditsStopped) && drained;
      // The backend's connections serve the jobs still running: with those, the exit closes them.
      if (quiet) await settleWithin(backend.close(), msUntil(by));
      return { drained: quiet };
    },
  };
}
