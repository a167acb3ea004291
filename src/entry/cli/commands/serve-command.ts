import type { App } from '../../../core/app.js';
import { queueSettings } from '../../../core/config/config-schema.js';
import { ExitCode } from '../../../core/errors.js';
import { startOperations } from '../../http/operations.js';
import type { CliIo } from '../cli-io.js';
import { armExitBackstop } from './exit-backstop.js';

/**
 * `pgrotate serve [--listen HOST:PORT]`: the HTTP API, health and metrics until SIGTERM or
 * SIGINT; requests in flight get queue.shutdownTimeout, the exit the close budget after it.
 */
export async function serveCommand(
  app: App,
  args: { listen?: string | undefined },
  io: CliIo,
  stopSignal?: Promise<void>,
): Promise<number> {
  const stop =
    stopSignal ??
    new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
  const ops = await startOperations(app, { http: true, ...(args.listen ? { listen: args.listen } : {}) });
  io.stdout.write(`pgrotate serving on ${ops.http?.url}\n`);
  await stop;
  const { waitBy, exitBy } = armExitBackstop(app, queueSettings(app.config).shutdownTimeout, stopSignal === undefined);
  app.log.info('stopping the HTTP server');
  const served = await ops.close(waitBy);
  await app.close({ by: exitBy, abandon: !served });
  return ExitCode.ok;
}
