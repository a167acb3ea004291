import type { App } from '../../../core/app.js';
import { ExitCode } from '../../../core/errors.js';
import { startOperations } from '../../http/operations.js';
import type { CliIo } from '../cli-io.js';

/** `pgrotate serve [--listen HOST:PORT]`: the HTTP API, health and metrics until SIGTERM or SIGINT. */
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
  app.log.info('stopping the HTTP server');
  await ops.close();
  return ExitCode.ok;
}
