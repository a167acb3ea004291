import { ALERT_EVENTS, type AlertsConfig } from '../config/config-schema.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { Redactor } from '../logging/redactor.js';
import type { OutboxDelivery, WebhookOutboxStore } from '../state/state-store.js';
import { auditMessage, contentType, eventBody, type Alert, type WebhookEvent } from './alert-payload.js';
import { SIGNATURE_HEADER, signatureValue } from './webhook-signature.js';
import { safeUrl, webhookKeys, type Hook } from './webhook-keys.js';

// Webhook delivery from the outbox in the state database (migration 5). Audit events reach it in
// their own transaction (a trigger); `emit` buffers an alert, written with one INSERT on a later
// turn of the event loop, so a receiver never slows a rotation. Any process sends what is due,
// leasing a few rows, each the oldest undelivered of its (webhook, account): in order per account
// even with several senders. Retries back off (capped) without end; after `attempts` tries or
// `failAfter` a delivery is failing: logged, counted (status, metrics), told once to the others.

const CONCURRENCY = 4; // deliveries at once in one process
/** Delivered rows are kept this long (for `status` and forensics), then pruned. */
export const OUTBOX_RETENTION_MS = 7 * 24 * 3_600_000;
/** How often a process prunes the outbox. */
const PRUNE_EVERY_MS = 10 * 60_000;
const ALERT_KINDS: ReadonlySet<string> = new Set(ALERT_EVENTS);

export interface AlertStats {
  delivered: number;
  /** Deliveries this process found failing (and alerted about). */
  failed: number;
  dropped: number;
  suppressed: number;
}

/** What a payload says about an account's configuration. */
export interface AccountFacts {
  target: string;
  provider: string;
  secret: string;
}

export interface AlertDispatcherOptions {
  config: AlertsConfig | undefined;
  redactor: Redactor;
  log: Logger;
  outbox: WebhookOutboxStore;
  /** An account's target and secret reference, from this process's config. */
  account?: (name: string) => AccountFacts | undefined;
}

/** Undelivered and failing deliveries of one webhook (for `status` and metrics). */
export interface WebhookBacklog {
  webhook: string;
  pending: number;
  failing: number;
  failingSince: Date | null;
  lastError: string | null;
}

interface Buffered {
  alert: Alert;
  keys: string[];
}

/** Sends alerts and subscribed audit events to the configured webhooks, from the outbox. */
export class AlertDispatcher {
  readonly stats: AlertStats = { delivered: 0, failed: 0, dropped: 0, suppressed: 0 };
  private readonly hooks: Hook[];
  private readonly byKey: Map<string, Hook>;
  private readonly lastSent = new Map<string, number>();
  private buffer: Buffered[] = [];
  private readonly writes = new Set<Promise<void>>();
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  private started: Promise<void> | null = null;
  /** Rows above this id were queued after this process started: the ones `close` waits for. */
  private highWater = '0';
  private timer: NodeJS.Timeout | undefined;
  private pumping = false;
  /** The latest look for deliveries (the first: what earlier processes left); `drain` waits for it. */
  private lastPump: Promise<void> = Promise.resolve();
  private again = false;
  private flushScheduled = false;
  private closed = false;
  private lastPrune = 0;

  constructor(private readonly opts: AlertDispatcherOptions) {
    this.hooks = webhookKeys(opts.config?.webhooks ?? []);
    this.byKey = new Map(this.hooks.map((h) => [h.key, h]));
  }

  /** Whether any webhook listens at all. */
  get enabled(): boolean {
    return this.hooks.length > 0;
  }

  /**
   * Write this config's subscriptions for the outbox trigger and, with webhooks, start sending:
   * now (what earlier processes left) and every `pollInterval`. Never throws; failures are logged.
   */
  start(): Promise<void> {
    this.started ??= this.begin();
    return this.started;
  }

  private async begin(): Promise<void> {
    const cfg = this.opts.config;
    const subscriptions: Record<string, string[]> = {};
    for (const h of this.hooks) subscriptions[h.key] = h.webhook.events.filter((e) => !ALERT_KINDS.has(e));
    try {
      await this.opts.outbox.subscribe(subscriptions);
      if (!this.enabled || !cfg) return;
      this.highWater = await this.opts.outbox.highWater();
    } catch (err) {
      this.opts.log.warn({ error: this.opts.redactor.scrub(messageOf(err)) }, 'webhook outbox: cannot start');
      return;
    }
    if (this.closed) return;
    this.timer = setInterval(() => this.wake(), cfg.pollInterval);
    this.timer.unref();
    this.wake();
  }

  /** Queue an alert for every webhook subscribed to its event. Never throws, never waits. */
  emit(alert: Alert): void {
    const cfg = this.opts.config;
    if (!cfg || this.closed) return;
    const keys = this.hooks.filter((h) => h.webhook.events.includes(alert.event)).map((h) => h.key);
    if (keys.length === 0) return;
    if (alert.event === 'rotation.failed' || alert.event === 'account.overdue') {
      // The same failure or overdue account is repeated at most once per repeatInterval. (Audit
      // findings are sent once by construction: only a change since the last run is told.)
      const key = `${alert.event}\0${alert.account ?? ''}`;
      if (this.suppressed(key, cfg.repeatInterval)) return;
    }
    if (this.buffer.length >= cfg.queueSize) {
      this.stats.dropped++;
      this.opts.log.warn(
        { event: alert.event, account: alert.account, queueSize: cfg.queueSize },
        'alert buffer full; alert dropped',
      );
      return;
    }
    this.buffer.push({ alert, keys });
    // Written on a later turn of the event loop, so even the INSERT is never paid inside the caller.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  /** Alerts buffered and deliveries running in this process. */
  get size(): number {
    return this.buffer.length + this.writes.size + this.inflight.size;
  }

  /** Undelivered and failing deliveries per configured webhook (URL without query). */
  async backlog(): Promise<WebhookBacklog[]> {
    const rows = await this.opts.outbox.backlog();
    return rows.flatMap((r) => {
      const h = this.byKey.get(r.webhook);
      return h ? [{ ...r, webhook: safeUrl(h.webhook.url) }] : [];
    });
  }

  /** Wait until every delivery queued since this process started was sent, or the timeout passed. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (!this.enabled) return true;
    const deadline = Date.now() + timeoutMs;
    await this.start();
    this.flush();
    while (Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.writes]), sleep(Math.max(0, deadline - Date.now()))]);
      this.wake();
      const keys = this.hooks.map((h) => h.key);
      const left = await this.opts.outbox.undeliveredAfter(keys, this.highWater).catch(() => null);
      if (left === null) return false;
      // Done when this process's rows went out and a look found nothing more that is due: rows
      // behind a head just delivered (earlier processes' backlog of an account) go out too.
      await this.lastPump;
      const idle = !this.pumping && this.inflight.size === 0 && this.writes.size === 0;
      if (left === 0 && this.buffer.length === 0 && idle) return true;
      await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
    }
    return false;
  }

  /** Stop; first give this process's deliveries up to `timeoutMs`. What is left stays in the outbox. */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return;
    const drained = await this.drain(timeoutMs);
    this.closed = true;
    clearInterval(this.timer);
    this.abort.abort();
    await Promise.allSettled([...this.inflight.values(), ...this.writes]);
    if (!drained)
      this.opts.log.warn('webhook deliveries still in the outbox at shutdown; the next pgrotate process sends them');
  }

  private suppressed(key: string, intervalMs: number): boolean {
    const last = this.lastSent.get(key);
    const now = Date.now();
    if (last !== undefined && now - last < intervalMs) {
      this.stats.suppressed++;
      return true;
    }
    this.lastSent.set(key, now);
    return false;
  }

  private flush(): void {
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    const write = this.opts.outbox
      .enqueue(
        batch.map(({ alert, keys }) => ({
          webhooks: keys,
          ordering: alert.account ?? (alert.target ? `target:${alert.target}` : ''),
          event: alert.event,
          account: alert.account,
          target: alert.target,
          rotationId: alert.rotationId ?? null,
          message: alert.message,
          detail: alert.detail,
          at: alert.at,
        })),
      )
      .then(
        () => this.wake(),
        (err: unknown) => {
          this.stats.dropped += batch.length;
          this.opts.log.error(
            { alerts: batch.length, error: this.opts.redactor.scrub(messageOf(err)) },
            'alerts not written to the webhook outbox; dropped',
          );
        },
      )
      .finally(() => this.writes.delete(write));
    this.writes.add(write);
  }

  /** Look for deliverable rows now (coalesced: one claim at a time). */
  private wake(): void {
    if (!this.started || this.closed || !this.enabled) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    const run = this.pump().finally(() => {
      this.pumping = false;
    });
    this.lastPump = run;
  }

  private async pump(): Promise<void> {
    const cfg = this.opts.config as AlertsConfig;
    const keys = this.hooks.map((h) => h.key);
    try {
      do {
        this.again = false;
        const room = CONCURRENCY - this.inflight.size;
        if (room <= 0 || this.closed) break;
        // The lease outlasts a request's timeout (and the write after it): a live sender is never
        // raced by another, and a killed one holds its rows only this long.
        const rows = await this.opts.outbox.claim(keys, room, 2 * cfg.timeout + 1000);
        for (const row of rows) {
          const run = this.deliver(row).finally(() => {
            this.inflight.delete(row.id);
            this.wake();
          });
          this.inflight.set(row.id, run);
        }
        if (rows.length === room) this.again = true;
      } while (this.again);
      if (Date.now() - this.lastPrune > PRUNE_EVERY_MS) {
        this.lastPrune = Date.now();
        const pruned = await this.opts.outbox.prune(OUTBOX_RETENTION_MS, 10_000, keys);
        if (pruned > 0) this.opts.log.debug({ pruned }, 'webhook outbox pruned');
      }
    } catch (err) {
      this.opts.log.warn({ error: this.opts.redactor.scrub(messageOf(err)) }, 'webhook outbox: cannot read deliveries');
    }
  }

  private async deliver(row: OutboxDelivery): Promise<void> {
    const cfg = this.opts.config as AlertsConfig;
    const hook = this.byKey.get(row.webhook) as Hook;
    const { redactor, log } = this.opts;
    let problem: string;
    try {
      const body = eventBody(this.webhookEvent(row), hook.webhook.format, redactor);
      const headers: Record<string, string> = {
        'content-type': contentType(hook.webhook.format),
        'user-agent': 'pgrotate',
        ...hook.webhook.headers,
      };
      if (hook.webhook.secret) headers[SIGNATURE_HEADER] = signatureValue(hook.webhook.secret, body, Date.now() / 1000);
      const res = await fetch(hook.webhook.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(cfg.timeout), this.abort.signal]),
      });
      // The body is not needed; reading it frees the connection.
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) {
        await this.opts.outbox.delivered(row.id);
        this.stats.delivered++;
        return;
      }
      problem = `HTTP ${res.status}`;
    } catch (err) {
      problem = this.closed ? 'abandoned at shutdown' : redactor.scrub(messageOf(err));
    }
    const where = safeUrl(hook.webhook.url);
    const base = Math.min(cfg.maxBackoff, cfg.backoff * 2 ** Math.min(30, row.attempts - 1));
    const delay = this.closed ? 0 : Math.round(base / 2 + Math.random() * (base / 2));
    try {
      await this.opts.outbox.retry(row.id, problem, delay);
      log.warn(
        {
          event: row.event,
          account: row.account,
          webhook: where,
          attempt: row.attempts,
          retryInMs: delay,
          error: problem,
        },
        'webhook delivery failed; will retry',
      );
      const failing = row.attempts >= cfg.attempts || row.ageMs >= cfg.failAfter;
      if (failing && !row.failingSince && !this.closed && (await this.opts.outbox.markFailing(row.id)))
        this.reportFailing(row, hook, where, problem);
    } catch (err) {
      log.warn({ error: redactor.scrub(messageOf(err)) }, 'webhook outbox: cannot record a failed delivery');
    }
  }

  /** Log a delivery that keeps failing and tell the other webhooks, once per webhook and repeatInterval. */
  private reportFailing(row: OutboxDelivery, hook: Hook, where: string, problem: string): void {
    const cfg = this.opts.config as AlertsConfig;
    this.stats.failed++;
    this.opts.log.error(
      { event: row.event, account: row.account, webhook: where, attempts: row.attempts, error: problem },
      'webhook delivery failing; still retrying',
    );
    // Never told to the failing webhook itself, and a failing `webhook.failing` is not told again.
    if (row.event === 'webhook.failing' || this.suppressed(`webhook.failing\0${hook.key}`, cfg.repeatInterval)) return;
    const others = this.hooks.filter((h) => h !== hook && h.webhook.events.includes('webhook.failing'));
    if (others.length === 0) return;
    this.buffer.push({
      alert: {
        event: 'webhook.failing',
        account: null,
        target: null,
        message: `webhook ${where}: deliveries failing (${problem}) after ${row.attempts} tries; still retrying`,
        detail: { webhook: where, event: row.event, account: row.account, attempts: row.attempts, error: problem },
        at: new Date(),
      },
      keys: others.map((h) => h.key),
    });
    this.flush();
  }

  /** The payload's facts for a leased row: the row's, the rotation's, and the account's config. */
  private webhookEvent(row: OutboxDelivery): WebhookEvent {
    const facts = row.account ? this.opts.account?.(row.account) : undefined;
    return {
      id: row.id,
      event: row.event,
      at: row.at,
      account: row.account,
      target: row.target ?? facts?.target ?? null,
      role: row.role,
      previousRole: row.previousRole,
      secretRef: facts ? { provider: facts.provider, secret: facts.secret } : null,
      rotationId: row.rotationId ?? (typeof row.detail.rotationId === 'string' ? row.detail.rotationId : null),
      rotation: row.rotationStartedAt
        ? {
            startedAt: row.rotationStartedAt,
            finishedAt: row.rotationFinishedAt,
            oldCredentialExpiresAt: row.oldCredentialExpiresAt,
          }
        : null,
      message: row.message ?? auditMessage(row.event, row.account, row.target ?? facts?.target ?? null),
      detail: row.detail,
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
