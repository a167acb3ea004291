import type { AlertDispatcher } from '../../core/alerts/alert-dispatcher.js';
import type { PgrotateConfig } from '../../core/config/config-schema.js';
import type { TargetConnector } from '../../core/pg/target-connector.js';
import type { AuditRunDiff, AuditRunStore } from '../../core/state/audit-run-store.js';
import type { StateStore } from '../../core/state/state-store.js';
import type { AuditReport, Finding } from '../../core/audit/audit-types.js';
import { runSecurityAudit } from './security-audit.js';

/** What an audit run needs, passed in so tests and the worker use the same path. */
export interface AuditServiceDeps {
  config: PgrotateConfig;
  state: StateStore;
  runs: AuditRunStore;
  targets: TargetConnector;
  alerts: AlertDispatcher;
}

/** A finished, stored run and what changed since the run before it. */
export interface AuditOutcome {
  report: AuditReport;
  diff: AuditRunDiff;
}

/**
 * Audit one target, store the run as its new baseline, and tell people about the change: an
 * audit event and an `audit.finding.new` alert per finding not open before, and
 * `audit.finding.resolved` per open finding no longer seen.
 */
export async function auditAndRecord(
  deps: AuditServiceDeps,
  target: string,
  actor: string | null,
): Promise<AuditOutcome> {
  const rotatedAt = new Map((await deps.state.listAccounts()).map((a) => [a.name, a.lastRotatedAt]));
  const report = await deps.targets.withAdmin(target, undefined, (client) =>
    runSecurityAudit({ client, config: deps.config, target, rotatedAt }),
  );
  const diff = await deps.runs.record(report, actor);
  for (const f of diff.added) await tell(deps, target, actor, diff, 'audit.finding.new', f);
  for (const f of diff.resolved) await tell(deps, target, actor, diff, 'audit.finding.resolved', f);
  await deps.state.audit({
    kind: 'security-audit.completed',
    actor,
    detail: {
      target,
      runId: diff.runId,
      counts: report.counts,
      notChecked: report.notChecked.map((n) => n.check),
      added: diff.added.length,
      resolved: diff.resolved.length,
    },
  });
  return { report, diff };
}

async function tell(
  deps: AuditServiceDeps,
  target: string,
  actor: string | null,
  diff: AuditRunDiff,
  event: 'audit.finding.new' | 'audit.finding.resolved',
  f: Finding,
): Promise<void> {
  const detail = {
    runId: diff.runId,
    check: f.check,
    severity: f.severity,
    subject: f.subject,
    message: f.message,
    fix: f.fix,
  };
  await deps.state.audit({ kind: event, actor, detail: { target, ...detail } });
  const what = event === 'audit.finding.new' ? 'new finding' : 'resolved';
  deps.alerts.emit({
    event,
    account: null,
    target,
    message: `${what} [${f.severity}] ${f.check} ${f.subject}: ${f.message}`,
    detail,
    at: new Date(),
  });
}
