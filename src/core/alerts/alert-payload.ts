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
  rotationId?: string | null;
}

/** What a delivered event tells: names, ids and times, never a password or a rendered value. */
export interface WebhookEvent {
  /** The delivery's id: the same on every retry, so a receiver can drop a repeat. */
  id: string;
  event: string;
  at: Date;
  account: string | null;
  target: string | null;
  role: string | null;
  previousRole: string | null;
  /** Where the account's secret lives: the provider's name and the secret's name in it. */
  secretRef: { provider: string; secret: string } | null;
  rotationId: string | null;
  rotation: { startedAt: Date | null; finishedAt: Date | null; oldCredentialExpiresAt: Date | null } | null;
  message: string;
  detail: Record<string, unknown>;
}

export type WebhookFormat = 'json' | 'slack' | 'cloudevents';

/** The body's media type for a format. */
export function contentType(format: WebhookFormat): string {
  return format === 'cloudevents' ? 'application/cloudevents+json; charset=utf-8' : 'application/json';
}

/** The `json` document of an event (also the `data` of a CloudEvent). */
function eventDocument(e: WebhookEvent): Record<string, unknown> {
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return {
    source: 'pgrotate',
    id: e.id,
    event: e.event,
    at: e.at.toISOString(),
    account: e.account,
    target: e.target,
    role: e.role,
    previousRole: e.previousRole,
    secretRef: e.secretRef,
    rotationId: e.rotationId,
    rotation: e.rotation && {
      startedAt: iso(e.rotation.startedAt),
      finishedAt: iso(e.rotation.finishedAt),
      oldCredentialExpiresAt: iso(e.rotation.oldCredentialExpiresAt),
    },
    message: e.message,
    detail: e.detail,
  };
}

/** The body sent to a webhook of the given format, scrubbed of every known secret. */
export function eventBody(e: WebhookEvent, format: WebhookFormat, redactor: Redactor): string {
  if (format === 'slack') {
    const where = [e.account && `account ${e.account}`, e.target && `target ${e.target}`].filter(Boolean).join(', ');
    return JSON.stringify({
      text: redactor.scrub(`pgrotate ${e.event}${where ? ` (${where})` : ''}: ${e.message}`),
    });
  }
  const doc = eventDocument(e);
  if (format === 'cloudevents') {
    // CloudEvents 1.0, structured mode: the context attributes beside `data`.
    return JSON.stringify(
      redactor.scrubValue({
        specversion: '1.0',
        id: e.id,
        source: 'pgrotate',
        type: `io.pgrotate.${e.event}`,
        subject: e.account ?? e.target ?? undefined,
        time: e.at.toISOString(),
        datacontenttype: 'application/json',
        data: doc,
      }),
    );
  }
  return JSON.stringify(redactor.scrubValue(doc));
}

/** One line for people about an audit event, which carries no message of its own. */
export function auditMessage(event: string, account: string | null, target: string | null): string {
  const who = account ? `account ${account}` : target ? `target ${target}` : 'pgrotate';
  return `${who}: ${event}`;
}
