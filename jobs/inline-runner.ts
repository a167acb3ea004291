import type { App } from '../src/core/app.js';
import { runBounded } from '../src/core/concurrency/run-bounded.js';
import { PerTargetLimiter } from './per-target-limiter.js';
import { runRequestedRotation, type RotationRequest, type RunResult } from './rotation-runner.js';
import { stateConnectionConfig } from './state-connection.js';

/**
 * Rotate accounts in this process with the same limits as the workers: the global concurrency
 * and the per-target slots (shared with any running workers through the state database).
 */
export async function runInline(
  app: App,
  accounts: string[],
  req: RotationRequest,
  progress?: (done: number, total: number) => void,
): Promise<RunResult[]> {
  const limiter = new PerTargetLimiter({
    connection: stateConnectionConfig(app.config, 'pgrotate-limiter', app.stateCredential),
    schema: app.config.state.schema,
    perTarget: app.config.limits.perTarget,
    log: app.log,
  });
  try {
    return await runBounded(
      accounts,
      app.config.limits.concurrency,
      (name) => runRequestedRotation({ app, limiter }, name, req),
      progress,
    );
  } finally {
    await limiter.close();
  }
}
