import { createHash } from 'node:crypto';
import type { AlertsConfig } from '../config/config-schema.js';

type Webhook = AlertsConfig['webhooks'][number];

/** A configured webhook and the key its outbox rows carry. */
export interface Hook {
  key: string;
  webhook: Webhook;
}

/**
 * A stable key per configured webhook (its URL and format), stored with its outbox rows; a
 * webhook listed twice the same way gets a numbered key of its own.
 */
export function webhookKeys(webhooks: Webhook[]): Hook[] {
  const seen = new Map<string, number>();
  return webhooks.map((webhook) => {
    const base = createHash('sha256').update(`${webhook.url}\0${webhook.format}`).digest('hex').slice(0, 16);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    return { key: n === 0 ? base : `${base}#${n}`, webhook };
  });
}

/** A webhook URL for logs: scheme, host and path only (query strings often carry tokens). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/[^/]{16,}/g, '/…')}`;
  } catch {
    return '(invalid url)';
  }
}
