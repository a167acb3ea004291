import type { Logger } from '../../core/logging/logger.js';
import type { Redactor } from '../../core/logging/redactor.js';
import { messageOf } from '../../core/errors.js';
import { auditAndRecord, type AuditServiceDeps } from './audit-service.js';

/** Targets with a scheduled audit and how often: a target's own `audit`, else the global one. */
export function auditSchedules(config: AuditServiceDeps['config']): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, t] of Object.entries(config.targets)) {
    const every = t.audit?.every ?? config.audit?.every;
    if (every !== undefined) out.set(name, every);
  }
  return out;
}

/**
 * Runs each target's security audit when it is due, from a long-running worker. The due time
 * lives in the state database and is claimed with one UPDATE, so any number of workers run each
 * audit once per interval, and a restarted worker does not audit again before it is due.
 */
export class AuditScheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly deps: AuditServiceDeps & { log: Logger; redactor: Redactor },
    /** How often to look for due audits; the shortest interval bounds the lateness. */
    private readonly pollMs = Math.max(
      1_000,
      Math.min(30_000, ...[...auditSchedules(deps.config).values()].map((ms) => Math.floor(ms / 5))),
    ),
  ) {}

  /** Start polling (a no-op without any scheduled target). */
  start(): void {
    if (auditSchedules(this.deps.config).size === 0) return;
    const loop = () => {
      if (this.stopped) return;
      this.running = this.tick().finally(() => {
        this.running = null;
        if (!this.stopped) this.timer = setTimeout(loop, this.pollMs);
      });
    };
    loop();
  }

  /** One pass: audit every target whose time has come. Errors are logged, never thrown. */
  async tick(): Promise<void> {
    for (const [target, every] of auditSchedules(this.deps.config)) {
      if (this.stopped) return;
      try {
        if (!(await this.deps.runs.claimDue(target, every))) continue;
        const { diff, report } = await auditAndRecord(this.deps, target, 'scheduler');
        this.deps.log.info(
          {
            target,
            runId: diff.runId,
            counts: report.counts,
            added: diff.added.length,
            resolved: diff.resolved.length,
          },
          'security audit done',
        );
      } catch (err) {
        this.deps.log.error(
          { target, error: this.deps.redactor.scrub(messageOf(err)) },
          'scheduled security audit failed',
        );
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
