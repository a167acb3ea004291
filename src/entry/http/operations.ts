import type { App } from '../../core/app.js';
import { startOverdueWatcher } from '../../core/alerts/overdue-watcher.js';
import { startHttpServer, type RunningHttpServer } from './http-server.js';

export interface Operations {
  http: RunningHttpServer | null;
  /** Stop the watcher and the HTTP server (by `by`, ms since epoch, when given); false when requests were cut short. */
  close(by?: number): Promise<boolean>;
}

/**
 * What a long-running process (`serve`, `worker`) offers operators: the HTTP server (health,
 * metrics, API) when asked, and the overdue-account alerts when webhooks are configured.
 */
export async function startOperations(
  app: App,
  opts: { http: boolean; listen?: string; queueDepth?: () => Promise<number> },
): Promise<Operations> {
  const watcher = app.alerts.enabled
    ? startOverdueWatcher({ state: app.state, config: app.config, alerts: app.alerts, log: app.log })
    : null;
  let http: RunningHttpServer | null = null;
  try {
    if (opts.http) {
      http = await startHttpServer({
        app,
        ...(opts.listen ? { listen: opts.listen } : {}),
        ...(opts.queueDepth ? { queueDepth: opts.queueDepth } : {}),
      });
    }
  } catch (err) {
    watcher?.stop();
    throw err;
  }
  return {
    http,
    async close(by?: number) {
      watcher?.stop();
      return (await http?.close(by)) ?? true;
    },
  };
}
