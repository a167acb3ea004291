import type { App } from '../../../core/app.js';
import { queueSettings } from '../../../core/config/config-schema.js';
import { ExitCode } from '../../../core/errors.js';
import { startWorker } from '../../../services/schedule/worker-service.js';
import { startOperations } from '../../http/operations.js';
import type { CliIo } from '../cli-io.js';
import { armExitBackstop } from './exit-backstop.js';

/**
 * `pgrotate worker`: run the scheduler and rotation jobs until SIGTERM or SIGINT, then exit 0
 * within queue.shutdownTimeout plus the close budget (src/core/shutdown-budget.ts).
 */
export async function workerCommand(app: App, _io: CliIo, stopSignal?: Promise<void>): Promise<number> {
  // Listen first: a SIGTERM during start-up still ends in an orderly stop.
  const stop =
    stopSignal ??
    new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
  const worker = await startWorker(app);
  // Health, metrics and the API when `http` is configured; overdue alerts when webhooks are.
  const ops = await startOperations(app, { http: app.config.http !== undefined });
  await stop;
  const { waitBy, exitBy } = armExitBackstop(app, queueSettings(app.config).shutdownTimeout, stopSignal === undefined);
  app.log.info('stopping: no new jobs are taken');
  // The API stops taking requests while the rotations get their time; neither waits for the other.
  const [served, { drained }] = await Promise.all([ops.close(waitBy), worker.stop(waitBy)]);
  await app.close({ by: exitBy, abandon: !(served && drained) });
  return ExitCode.ok;
}
