import type { AlertsConfig } from '../config/config-schema.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { Redactor } from '../logging/redactor.js';
import { alertBody, type Alert } from './alert-payload.js';

// Fire-and-forget webhook delivery. `emit` only appends to a bounded in-memory queue and
// returns, so a slow or failing receiver can never slow a rotation down; a few deliveries run
// at a time, each retried with exponential backoff and jitter. When the queue is full new
// alerts are dropped and logged: losing an alert is better than stalling rotations.

type Webhook = AlertsConfig['webhooks'][number];

interface Delivery {
  webhook: Webhook;
  alert: Alert;
  body: string;
  attempt: number;
}

/** How many deliveries run at once. */
const CONCURRENCY = 4;
/** Longest wait between two tries of one delivery. */
const MAX_BACKOFF_MS = 60_000;

export interface AlertStats {
  delivered: number;
  failed: number;
  dropped: number;
  suppressed: number;
}

export interface AlertDispatcherOptions {
  config: AlertsConfig | undefined;
  redactor: Redactor;
  log: Logger;
}

/** Sends alerts to the configured webhooks in the background. */
export class AlertDispatcher {
  readonly stats: AlertStats = { delivered: 0, failed: 0, dropped: 0, suppressed: 0 };
  private readonly pending: Delivery[] = [];
  private active = 0;
  /** Deliveries sleeping before their next try, by their timer. */
  private readonly sleeping = new Map<NodeJS.Timeout, Delivery>();
  private readonly lastSent = new Map<string, number>();
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  private pumpScheduled = false;

  constructor(private readonly opts: AlertDispatcherOptions) {}

  /** Whether any webhook listens for alerts at all. */
  get enabled(): boolean {
    return (this.opts.config?.webhooks.length ?? 0) > 0;
  }

  /** Queue an alert for every webhook subscribed to its event. Never throws, never waits. */
  emit(alert: Alert): void {
    const cfg = this.opts.config;
    if (!cfg || this.closed) return;
    const hooks = cfg.webhooks.filter((w) => w.events.includes(alert.event));
    if (hooks.length === 0) return;
    if (alert.event === 'rotation.failed' || alert.event === 'account.overdue') {
      // The same failure or overdue account is repeated at most once per repeatInterval. (Audit
      // findings are sent once by construction: only a change since the last run is told.)
      const key = `${alert.event}\0${alert.account ?? ''}`;
      const last = this.lastSent.get(key);
      const now = Date.now();
      if (last !== undefined && now - last < cfg.repeatInterval) {
        this.stats.suppressed++;
        return;
      }
      this.lastSent.set(key, now);
    }
    for (const webhook of hooks) {
      if (this.size >= cfg.queueSize) {
        this.stats.dropped++;
        this.opts.log.warn(
          { event: alert.event, account: alert.account, queueSize: cfg.queueSize },
          'alert queue full; alert dropped',
        );
        continue;
      }
      let body: string;
      try {
        body = alertBody(alert, webhook.format, this.opts.redactor);
      } catch (err) {
        this.opts.log.warn({ error: this.opts.redactor.scrub(messageOf(err)) }, 'could not build an alert');
        continue;
      }
      this.pending.push({ webhook, alert, body, attempt: 0 });
    }
    // Deliveries start on a later turn of the event loop, so even the first HTTP request's set-up
    // cost is never paid inside the caller (a rotation).
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      setImmediate(() => {
        this.pumpScheduled = false;
        this.pump();
      });
    }
  }

  /** Deliveries queued, running or waiting to retry. */
  get size(): number {
    return this.pending.length + this.active + this.sleeping.size;
  }

  /** Wait until every queued alert was delivered or given up, or the timeout passed. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.size === 0) return true;
    // Deliveries sleeping before a retry are tried now rather than after their backoff.
    for (const [timer, d] of this.sleeping) {
      clearTimeout(timer);
      this.pending.push(d);
    }
    this.sleeping.clear();
    this.pump();
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    const done = await Promise.race([idle, timeout]);
    clearTimeout(timer);
    return done;
  }

  /** Stop taking alerts; give queued ones up to `timeoutMs`, then abandon (and log) the rest. */
  async close(timeoutMs = 10_000): Promise<void> {
    const drained = await this.drain(timeoutMs);
    this.closed = true;
    if (!drained) {
      this.opts.log.warn({ undelivered: this.size }, 'alerts still undelivered at shutdown');
      for (const timer of this.sleeping.keys()) clearTimeout(timer);
      this.sleeping.clear();
      this.pending.length = 0;
    }
  }

  private pump(): void {
    while (this.active < CONCURRENCY && this.pending.length > 0) {
      const d = this.pending.shift() as Delivery;
      this.active++;
      void this.attempt(d).finally(() => {
        this.active--;
        this.pump();
        this.checkIdle();
      });
    }
  }

  private checkIdle(): void {
    if (this.size > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async attempt(d: Delivery): Promise<void> {
    const cfg = this.opts.config as AlertsConfig;
    d.attempt++;
    let problem: string;
    try {
      const res = await fetch(d.webhook.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'pgrotate', ...d.webhook.headers },
        body: d.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(cfg.timeout),
      });
      // The body is not needed; reading it frees the connection.
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) {
        this.stats.delivered++;
        return;
      }
      problem = `HTTP ${res.status}`;
    } catch (err) {
      problem = this.opts.redactor.scrub(messageOf(err));
    }
    const where = safeUrl(d.webhook.url);
    if (d.attempt >= cfg.attempts || this.closed) {
      this.stats.failed++;
      this.opts.log.error(
        { event: d.alert.event, account: d.alert.account, webhook: where, attempts: d.attempt, error: problem },
        'alert not delivered; giving up',
      );
      return;
    }
    const base = Math.min(MAX_BACKOFF_MS, cfg.backoff * 2 ** (d.attempt - 1));
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.opts.log.warn(
      { event: d.alert.event, webhook: where, attempt: d.attempt, retryInMs: delay, error: problem },
      'alert delivery failed; will retry',
    );
    const timer = setTimeout(() => {
      this.sleeping.delete(timer);
      this.pending.push(d);
      this.pump();
    }, delay);
    timer.unref();
    this.sleeping.set(timer, d);
  }
}

/** A webhook URL for logs: scheme, host and path only (query strings often carry tokens). */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/[^/]{16,}/g, '/…')}`;
  } catch {
    return '(invalid url)';
  }
}
