import type { PoolClient } from 'pg';
import type { AuditReport, Finding } from '../audit/audit-types.js';
import type { StateTables } from './state-tables.js';
import { STATE_SQL } from './state-statements.js';

/** What storing a run changed: findings first seen now, and open findings no longer seen. */
export interface AuditRunDiff {
  runId: string;
  /** True when this target had no earlier run: every finding is new. */
  first: boolean;
  added: Finding[];
  resolved: Finding[];
}

/** A stored run: when, by whom, and the report as it was. */
export interface StoredAuditRun {
  runId: string;
  at: Date;
  actor: string | null;
  report: AuditReport;
}

/** An open finding as stored. */
interface OpenFindingRow {
  id: string;
  check: string;
  subject: string;
  severity: Finding['severity'];
  message: string;
  fix: string;
}

/** Within one target, two findings are the same finding when check and subject match. */
function findingKey(f: { check: string; subject: string }): string {
  return `${f.check}\u0000${f.subject}`;
}

/**
 * The state tables of scheduled and `--since-last` audits. Findings are keyed by target, check
 * and subject; a run opens the new ones, keeps the ones still present and resolves the rest, in
 * one transaction, so two runs of the same target never both report a finding as new.
 */
export class AuditRunStore {
  constructor(private readonly store: StateTables) {}

  /** Store `report` as the target's newest run and return what changed since the previous one. */
  async record(report: AuditReport, actor: string | null): Promise<AuditRunDiff> {
    const client = await this.store.pool.connect();
    try {
      await client.query('BEGIN');
      // One run at a time per target: the diff is against the run before, never a concurrent one.
      await client.query(STATE_SQL.lockForTransaction, [`pgrotate:${this.store.schema}:audit:${report.target}`]);
      const earlier = await client.query(STATE_SQL.auditRunExists, [report.target]);
      const run = await client.query<{ id: string }>(STATE_SQL.insertAuditRun, [
        report.target,
        actor,
        JSON.stringify(this.store.redactor.scrubValue(report)),
      ]);
      const runId = run.rows[0]?.id as string;
      const { added, resolved } = await this.applyFindings(client, report, runId);
      await client.query('COMMIT');
      return { runId, first: earlier.rowCount === 0, added, resolved };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** Inside record's transaction: open the new findings, refresh the kept ones, resolve the rest. */
  private async applyFindings(
    client: PoolClient,
    report: AuditReport,
    runId: string,
  ): Promise<{ added: Finding[]; resolved: Finding[] }> {
    const open = await client.query<OpenFindingRow>(STATE_SQL.openFindings, [report.target]);
    const openByKey = new Map(open.rows.map((r) => [findingKey(r), r]));
    const seen = new Set(report.findings.map(findingKey));
    const added: Finding[] = [];
    for (const f of report.findings) {
      const existing = openByKey.get(findingKey(f));
      if (existing) {
        await client.query(STATE_SQL.refreshFinding, [existing.id, runId, f.severity, f.message, f.fix]);
        continue;
      }
      added.push(f);
      await client.query(STATE_SQL.openFinding, [
        report.target,
        f.check,
        f.subject,
        f.severity,
        f.message,
        f.fix,
        runId,
      ]);
    }
    // A check that could not run this time says nothing about its findings: keep them open.
    const unchecked = new Set(report.notChecked.map((n) => n.check));
    const resolved = open.rows.filter((r) => !seen.has(findingKey(r)) && !unchecked.has(r.check));
    if (resolved.length > 0) {
      await client.query(STATE_SQL.resolveFindings, [resolved.map((r) => r.id), runId]);
    }
    return {
      added,
      resolved: resolved.map((r) => ({
        check: r.check,
        subject: r.subject,
        severity: r.severity,
        message: r.message,
        fix: r.fix,
      })),
    };
  }

  /** The target's newest stored run, or null. */
  async latest(target: string): Promise<StoredAuditRun | null> {
    const res = await this.store.pool.query<{ id: string; at: Date; actor: string | null; report: AuditReport }>(
      STATE_SQL.latestAuditRun,
      [target],
    );
    const r = res.rows[0];
    return r ? { runId: r.id, at: r.at, actor: r.actor, report: r.report } : null;
  }

  /** Open findings per target and severity, and each target's last run time (for metrics). */
  async summary(): Promise<{
    open: Array<{ target: string; severity: string; n: number }>;
    lastRun: Array<{ target: string; at: Date }>;
  }> {
    const open = await this.store.pool.query<{ target: string; severity: string; n: number }>(
      STATE_SQL.openFindingCounts,
    );
    const lastRun = await this.store.pool.query<{ target: string; at: Date }>(STATE_SQL.lastAuditRuns);
    return { open: open.rows, lastRun: lastRun.rows };
  }

  /**
   * Claim the target's audit if it is due (or has never run), pushing its next run `everyMs`
   * ahead in the same statement; true for exactly one caller per due time.
   */
  async claimDue(target: string, everyMs: number): Promise<boolean> {
    const res = await this.store.pool.query(STATE_SQL.claimAudit, [target, everyMs]);
    return (res.rowCount ?? 0) > 0;
  }
}
