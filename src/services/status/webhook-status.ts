import type { App } from '../../core/app.js';
import type { WebhookBacklog } from '../../core/alerts/alert-dispatcher.js';

/** Each configured webhook with undelivered deliveries in the outbox (the webhooks part of `status`). */
export async function webhookStatuses(app: App): Promise<WebhookBacklog[]> {
  return app.alerts.enabled ? app.alerts.backlog() : [];
}

/** One line per webhook with a backlog, for `status`: how many wait, how many are failing and why. */
export function webhookStatusLines(rows: WebhookBacklog[]): string[] {
  return rows.map((r) => {
    const failing =
      r.failing > 0
        ? `, ${r.failing} failing since ${r.failingSince?.toISOString() ?? '?'} (${r.lastError ?? 'no error recorded'})`
        : '';
    return `webhook ${r.webhook}: ${r.pending} undelivered${failing}`;
  });
}

/** The `webhooks` part of `status --json`. */
export function webhookStatusJson(rows: WebhookBacklog[]): Array<Record<string, unknown>> {
  return rows.map((r) => ({ ...r, failingSince: r.failingSince?.toISOString() ?? null }));
}
