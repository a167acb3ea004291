import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { PgrotateConfig } from '../../core/config/config-schema.js';
import type { RotationResult } from '../../core/rotation/rotation-engine.js';
import { SEVERITIES } from '../../core/audit/audit-types.js';
import type { AuditRunStore } from '../../core/state/audit-run-store.js';
import type { StateStore } from '../../core/state/state-store.js';
import { DEFAULT_OVERDUE_AFTER_MS } from '../../core/alerts/overdue-watcher.js';
import type { WebhookBacklog } from '../../core/alerts/alert-dispatcher.js';
import { safeUrl } from '../../core/alerts/webhook-keys.js';

// Prometheus metrics on a registry passed in (never prom-client's global one, so two servers in
// one process or a test do not share series). Rotation counters are fed by the engine's result
// hook; per-account gauges are read from the state database at scrape time. Labels are bounded:
// outcome, target and account names from the config; never rotation ids or anything secret.

export interface MetricsDeps {
  registry: Registry;
  state: StateStore;
  config: PgrotateConfig;
  /** Stored security-audit runs (open findings, last run per target); absent: no audit metrics. */
  auditRuns?: AuditRunStore;
  /** Jobs waiting in the rotation queue; absent when this process has no queue. */
  queueDepth?: () => Promise<number>;
  /** Undelivered and failing webhook deliveries per webhook (the outbox); absent: no webhook metrics. */
  webhooks?: () => Promise<WebhookBacklog[]>;
}

/** pgrotate's metrics and how to refresh them. */
export class PgrotateMetrics {
  private readonly rotations: Counter<'outcome' | 'target'>;
  private readonly duration: Histogram<'outcome'>;
  /** Per-account series, rendered by hand: prom-client formats ~25k series a second, too slow for large fleets. */
  private perAccount = { age: [] as Array<[string, number]>, nextDue: [] as Array<[string, number]> };
  /** Sessions of each alternating account's previous role, from the last sample (absent: not in grace). */
  private previousSessions: Array<[string, number]> = [];
  private readonly overdue: Gauge;
  private readonly failed: Gauge;
  private readonly queueDepth: Gauge;
  private readonly scrapeErrors: Counter<'source'>;
  private readonly auditFindings: Gauge<'target' | 'severity'>;
  private readonly auditLastRun: Gauge<'target'>;
  private readonly webhookPending: Gauge<'webhook'>;
  private readonly webhookFailing: Gauge<'webhook'>;

  constructor(private readonly deps: MetricsDeps) {
    const registers = [deps.registry];
    this.rotations = new Counter({
      name: 'pgrotate_rotations_total',
      help: 'Rotations finished by this process, by outcome (succeeded, failed, busy, skipped, dry-run) and target.',
      labelNames: ['outcome', 'target'],
      registers,
    });
    this.duration = new Histogram({
      name: 'pgrotate_rotation_duration_seconds',
      help: 'Wall-clock time of one rotation attempt, by outcome.',
      labelNames: ['outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.overdue = new Gauge({
      name: 'pgrotate_overdue_accounts',
      help: 'Configured accounts whose due time passed more than alerts.overdueAfter ago.',
      registers,
    });
    this.failed = new Gauge({
      name: 'pgrotate_failed_accounts',
      help: 'Configured accounts whose last rotation attempt failed.',
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'pgrotate_queue_depth',
      help: 'Rotation jobs waiting, delayed or running in the queue (absent without a queue).',
      registers,
    });
    this.auditFindings = new Gauge({
      name: 'pgrotate_audit_findings',
      help: 'Open findings of the last stored security audit, by target and severity.',
      labelNames: ['target', 'severity'],
      registers,
    });
    this.auditLastRun = new Gauge({
      name: 'pgrotate_audit_last_run_timestamp_seconds',
      help: 'When the target was last audited and the run stored, as a Unix timestamp.',
      labelNames: ['target'],
      registers,
    });
    [this.webhookPending, this.webhookFailing] = webhookGauges(registers);
    this.scrapeErrors = new Counter({
      name: 'pgrotate_metrics_errors_total',
      help: 'Scrapes where a source (state database, queue) could not be read.',
      labelNames: ['source'],
      registers,
    });
  }

  /** Count one rotation result; use as a RotationObserver. */
  readonly observe = (result: RotationResult, durationMs: number): void => {
    this.rotations.inc({ outcome: result.outcome, target: result.target });
    // Busy and skipped attempts did no work: their time would skew the histogram.
    if (result.outcome !== 'busy' && result.outcome !== 'skipped')
      this.duration.observe({ outcome: result.outcome }, durationMs / 1000);
  };

  /** Read the per-account gauges from the state database and the queue depth, then render the text format. */
  async render(): Promise<string> {
    await Promise.all([
      this.refreshAccounts(),
      this.refreshQueue(),
      this.refreshAudit(),
      this.refreshWebhooks(),
      this.refreshPreviousRoles(),
    ]);
    return (await this.deps.registry.metrics()) + this.renderPerAccount();
  }

  /** Content type of the text format. */
  get contentType(): string {
    return this.deps.registry.contentType;
  }

  private renderPerAccount(): string {
    // Account names match [A-Za-z0-9._-]+ (config schema), so label values need no escaping.
    const family = (name: string, help: string, series: Array<[string, number]>) =>
      `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${series.map(([account, v]) => `${name}{account="${account}"} ${v}\n`).join('')}`;
    return (
      family(
        'pgrotate_credential_age_seconds',
        'Seconds since the account was last rotated successfully (absent: never rotated).',
        this.perAccount.age,
      ) +
      family(
        'pgrotate_next_due_timestamp_seconds',
        'When the account is next due for rotation, as a Unix timestamp (absent: not scheduled).',
        this.perAccount.nextDue,
      ) +
      family(
        'pgrotate_previous_role_sessions',
        'Sessions of the previous role of an alternating account at the last sample (absent: no previous role in grace).',
        this.previousSessions,
      )
    );
  }

  private async refreshPreviousRoles(): Promise<void> {
    const configured = new Set(this.deps.config.accounts.map((a) => a.name));
    try {
      const rows = await this.deps.state.previousRoleUsage.sessionsByAccount();
      this.previousSessions = rows.filter((r) => configured.has(r.account)).map((r) => [r.account, r.sessions]);
    } catch {
      this.scrapeErrors.inc({ source: 'state' });
    }
  }

  private async refreshAccounts(): Promise<void> {
    const { state, config } = this.deps;
    const overdueAfter = config.alerts?.overdueAfter ?? DEFAULT_OVERDUE_AFTER_MS;
    try {
      const rows = await state.accountTimes(config.accounts.map((a) => a.name));
      const age: Array<[string, number]> = [];
      const nextDue: Array<[string, number]> = [];
      let overdue = 0;
      let failed = 0;
      for (const r of rows) {
        const now = r.now.getTime();
        if (r.lastRotatedAt) age.push([r.name, Math.max(0, (now - r.lastRotatedAt.getTime()) / 1000)]);
        if (r.nextDueAt) {
          nextDue.push([r.name, Math.floor(r.nextDueAt.getTime() / 1000)]);
          if (r.nextDueAt.getTime() < now - overdueAfter) overdue++;
        }
        if (r.lastStatus === 'failed') failed++;
      }
      this.perAccount = { age, nextDue };
      this.overdue.set(overdue);
      this.failed.set(failed);
    } catch {
      // Keep the last values; the error counter tells the scraper they are stale.
      this.scrapeErrors.inc({ source: 'state' });
    }
  }

  private async refreshAudit(): Promise<void> {
    if (!this.deps.auditRuns) return;
    try {
      const { open, lastRun } = await this.deps.auditRuns.summary();
      this.auditFindings.reset();
      this.auditLastRun.reset();
      // Every severity of every audited target, so a resolved finding shows as 0 rather than vanishing.
      for (const { target } of lastRun)
        for (const severity of SEVERITIES) this.auditFindings.set({ target, severity }, 0);
      for (const r of open) this.auditFindings.set({ target: r.target, severity: r.severity }, r.n);
      for (const r of lastRun) this.auditLastRun.set({ target: r.target }, Math.floor(r.at.getTime() / 1000));
    } catch {
      this.scrapeErrors.inc({ source: 'audit' });
    }
  }

  private async refreshWebhooks(): Promise<void> {
    if (!this.deps.webhooks) return;
    try {
      const rows = await this.deps.webhooks();
      this.webhookPending.reset();
      this.webhookFailing.reset();
      // Every configured webhook, so one whose backlog cleared shows 0 rather than vanishing.
      for (const w of this.deps.config.alerts?.webhooks ?? []) {
        const webhook = safeUrl(w.url);
        this.webhookPending.set({ webhook }, 0);
        this.webhookFailing.set({ webhook }, 0);
      }
      for (const r of rows) {
        this.webhookPending.inc({ webhook: r.webhook }, r.pending);
        this.webhookFailing.inc({ webhook: r.webhook }, r.failing);
      }
    } catch {
      this.scrapeErrors.inc({ source: 'webhooks' });
    }
  }

  private async refreshQueue(): Promise<void> {
    if (!this.deps.queueDepth) return;
    try {
      this.queueDepth.set(await this.deps.queueDepth());
    } catch {
      this.scrapeErrors.inc({ source: 'queue' });
    }
  }
}

/** The outbox gauges: undelivered and failing deliveries per webhook. */
function webhookGauges(registers: Registry[]): [Gauge<'webhook'>, Gauge<'webhook'>] {
  return [
    new Gauge({
      name: 'pgrotate_webhook_deliveries_pending',
      help: 'Webhook deliveries in the outbox not yet delivered, by webhook (scheme, host and path).',
      labelNames: ['webhook'],
      registers,
    }),
    new Gauge({
      name: 'pgrotate_webhook_deliveries_failing',
      help: 'Webhook deliveries still retried after alerts.attempts tries or alerts.failAfter, by webhook.',
      labelNames: ['webhook'],
      registers,
    }),
  ];
}
