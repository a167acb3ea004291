import type { App } from '../../../core/app.js';
import { startWorker } from '../../../services/schedule/worker-service.js';
import { ExitCode } from '../../../core/errors.js';
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
  const worker = await startWorker(app);
  // Health, metrics and the API when `http` is configured; overdue alerts when webhooks are.
  const ops = await startOperations(app, { http: app.config.http !== undefined });
  await stop;
  app.log.info('stopping: no new jobs are taken');
  await ops.close();
  await worker.stop();
  return ExitCode.ok;
}
