import type { AlertEventKind } from '../config/config-schema.js';
import type { Redactor } from '../logging/redactor.js';

/** One thing worth telling a person about. Carries names and messages only, never a credential. */
export interface Alert {
  event: AlertEventKind;
  account: string | null;
  target: string | null;
  /** One line for people. */
  message: string;
  detail: Record<string, unknown>;
  at: Date;
}

/** The JSON body sent to a webhook of the given format, scrubbed of every known secret. */
export function alertBody(alert: Alert, format: 'json' | 'slack', redactor: Redactor): string {
  if (format === 'slack') {
    const where = [alert.account && `account ${alert.account}`, alert.target && `target ${alert.target}`]
      .filter(Boolean)
      .join(', ');
    return JSON.stringify({
      text: redactor.scrub(`pgrotate ${alert.event}${where ? ` (${where})` : ''}: ${alert.message}`),
    });
  }
  return JSON.stringify(
    redactor.scrubValue({
      source: 'pgrotate',
      event: alert.event,
      at: alert.at.toISOString(),
      account: alert.account,
      target: alert.target,
      message: alert.message,
      detail: alert.detail,
    }),
  );
}
