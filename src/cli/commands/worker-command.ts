import { createQueueBackend } from '../../../jobs/queue-backend.js';
import { startRotationWorker } from '../../../jobs/rotation-worker.js';
import type { App } from '../../app/app-context.js';
import { AuditScheduler } from '../../audit/audit-scheduler.js';
import { ExitCode } from '../../errors.js';
import { startOperations } from '../../http/operations.js';
import type { CliIo } from '../cli-io.js';

/** `pgrotate worker`: run the scheduler and rotation jobs until SIGTERM or SIGINT, then exit 0. */
export async function workerCommand(app: App, _io: CliIo, stopSignal?: Promise<void>): Promise<number> {
  // Listen first: a SIGTERM during start-up still ends in an orderly stop.
  const stop =
    stopSignal ??
    new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
  const backend = createQueueBackend(app.config, app.stateCredential);
  const worker = await startRotationWorker(app, backend);
  // Health, metrics and the API when `http` is configured; overdue alerts when webhooks are.
  const ops = await startOperations(app, { http: app.config.http !== undefined });
  // Scheduled security audits (`audit: { every }`), alerting on drift between runs.
  const audits = new AuditScheduler({ config: app.config, state: app.state, runs: app.auditRuns, targets: app.targets, alerts: app.alerts, log: app.log.child({ component: 'audit' }), redactor: app.redactor });
  audits.start();
  await stop;
  app.log.info('stopping: no new jobs are taken');
  await audits.stop();
  await ops.close();
  await worker.stop();
  await backend.close();
  return ExitCode.ok;
}
