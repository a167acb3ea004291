import type { StateTables } from './state-tables.js';
import { STATE_SQL } from './state-statements.js';

// The webhook outbox (migration 5): deliveries as rows of the state database, so they survive the
// process that queued them and any pgrotate process can send them. Audit events are queued by a
// trigger in their own transaction; alerts are queued here. Rows are read a few at a time, never
// the whole table.

/** An alert to queue for some webhooks. Its message and detail are scrubbed before they are written. */
export interface OutboxAlert {
  webhooks: string[];
  ordering: string;
  event: string;
  account: string | null;
  target: string | null;
  rotationId: string | null;
  message: string;
  detail: Record<string, unknown>;
  at: Date;
}

/** A leased delivery, with the rotation and account facts its payload carries. */
export interface OutboxDelivery {
  id: string;
  webhook: string;
  event: string;
  account: string | null;
  target: string | null;
  rotationId: string | null;
  auditEventId: string | null;
  message: string | null;
  detail: Record<string, unknown>;
  at: Date;
  createdAt: Date;
  /** Tries so far, this one included. */
  attempts: number;
  failingSince: Date | null;
  role: string | null;
  previousRole: string | null;
  rotationStartedAt: Date | null;
  rotationFinishedAt: Date | null;
  oldCredentialExpiresAt: Date | null;
  /** How long ago the row was queued (state-database clock). */
  ageMs: number;
}

/** Undelivered rows of one webhook. */
export interface OutboxBacklog {
  webhook: string;
  pending: number;
  failing: number;
  failingSince: Date | null;
  lastError: string | null;
}

/** Reads and writes of `webhook_outbox` and `webhook_subscriptions`. */
export class WebhookOutboxStore {
  constructor(private readonly db: StateTables) {}

  /** Make the trigger queue exactly these audit event kinds for these webhooks (by key). */
  async subscribe(events: Record<string, string[]>): Promise<void> {
    await this.db.pool.query(STATE_SQL.syncSubscriptions, [JSON.stringify(events)]);
  }

  /** The newest row's id: rows above it were queued later. */
  async highWater(): Promise<string> {
    const res = await this.db.pool.query<{ id: string }>(STATE_SQL.outboxHighWater);
    return res.rows[0]?.id ?? '0';
  }

  /** Queue alerts, one row per webhook each, in the given order (one statement). */
  async enqueue(alerts: OutboxAlert[]): Promise<void> {
    const cols: unknown[][] = [[], [], [], [], [], [], [], [], []];
    for (const a of alerts) {
      const message = this.db.redactor.scrub(a.message);
      const detail = JSON.stringify(this.db.redactor.scrubValue(a.detail));
      for (const w of a.webhooks) {
        [w, a.ordering, a.event, a.account, a.target, a.rotationId, message, detail, a.at].forEach((v, i) =>
          cols[i]?.push(v),
        );
      }
    }
    if ((cols[0]?.length ?? 0) === 0) return;
    await this.db.pool.query(STATE_SQL.insertOutboxAlerts, cols);
  }

  /** Lease at most `limit` deliverable rows of `webhooks` for `leaseMs`. */
  async claim(webhooks: string[], limit: number, leaseMs: number): Promise<OutboxDelivery[]> {
    const res = await this.db.pool.query(STATE_SQL.claimOutbox, [webhooks, limit, leaseMs]);
    return res.rows.map((r) => ({
      id: r.id as string,
      webhook: r.webhook as string,
      event: r.event as string,
      account: r.account as string | null,
      target: r.target as string | null,
      rotationId: r.rotation_id as string | null,
      auditEventId: r.audit_event_id as string | null,
      message: r.message as string | null,
      detail: (r.detail ?? {}) as Record<string, unknown>,
      at: r.at as Date,
      createdAt: r.created_at as Date,
      attempts: r.attempts as number,
      failingSince: r.failing_since as Date | null,
      role: r.target_role as string | null,
      previousRole: r.previous_role as string | null,
      rotationStartedAt: r.started_at as Date | null,
      rotationFinishedAt: r.finished_at as Date | null,
      oldCredentialExpiresAt: r.old_credential_expires_at as Date | null,
      ageMs: Number(r.age_ms),
    }));
  }

  /** Row `id` reached its receiver. */
  async delivered(id: string): Promise<void> {
    await this.db.pool.query(STATE_SQL.outboxDelivered, [id]);
  }

  /** Row `id` failed with `error` (scrubbed): try again in `delayMs`. */
  async retry(id: string, error: string, delayMs: number): Promise<void> {
    await this.db.pool.query(STATE_SQL.outboxRetry, [id, this.db.redactor.scrub(error), delayMs]);
  }

  /** Mark row `id` failing; true only for the one caller that did (so it alerts once). */
  async markFailing(id: string): Promise<boolean> {
    const res = await this.db.pool.query(STATE_SQL.outboxFailing, [id]);
    return (res.rowCount ?? 0) > 0;
  }

  /** Undelivered rows of `webhooks` queued after `afterId`. */
  async undeliveredAfter(webhooks: string[], afterId: string): Promise<number> {
    const res = await this.db.pool.query<{ n: number }>(STATE_SQL.outboxUndeliveredAfter, [webhooks, afterId]);
    return res.rows[0]?.n ?? 0;
  }

  /** Undelivered and failing rows per webhook. */
  async backlog(): Promise<OutboxBacklog[]> {
    const res = await this.db.pool.query(STATE_SQL.outboxBacklog);
    return res.rows.map((r) => ({
      webhook: r.webhook as string,
      pending: r.pending as number,
      failing: r.failing as number,
      failingSince: r.failing_since as Date | null,
      lastError: r.last_error === null ? null : this.db.redactor.scrub(r.last_error as string),
    }));
  }

  /**
   * Delete at most `limit` rows delivered more than `retentionMs` ago, and undelivered rows as old
   * of webhooks not in `known` (no process can send them any more). Returns how many.
   */
  async prune(retentionMs: number, limit: number, known: string[]): Promise<number> {
    const res = await this.db.pool.query(STATE_SQL.pruneOutbox, [retentionMs, limit, known]);
    return res.rowCount ?? 0;
  }
}
