import { createQueueBackend } from '../../../jobs/queue-backend.js';
import { startRotationWorker } from '../../../jobs/rotation-worker.js';
import type { App } from '../../core/app.js';
import { AuditScheduler } from '../audit/audit-scheduler.js';

/** A running worker: the queue's scheduler and rotation jobs, and the scheduled security audits. */
export interface RunningWorker {
  /** Take no new jobs, finish the ones in flight, stop the audits, close the queue. */
  stop(): Promise<void>;
}

/** Start the rotation worker on the configured queue backend, and the scheduled audits (`audit: { every }`). */
export async function startWorker(app: App): Promise<RunningWorker> {
  const backend = createQueueBackend(app.config, app.stateCredential);
  const worker = await startRotationWorker(app, backend);
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
    async stop() {
      await audits.stop();
      await worker.stop();
      await backend.close();
    },
  };
}
