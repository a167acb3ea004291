import type { AuditReport, Finding } from '../audit/audit-types.js';
import type { StateTables } from './state-tables.js';

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

/**
 * The state tables of scheduled and `--since-last` audits. Findings are keyed by target, check
 * and subject; a run opens the new ones, keeps the ones still present and resolves the rest, in
 * one transaction, so two runs of the same target never both report a finding as new.
 */
export class AuditRunStore {
  constructor(private readonly store: StateTables) {}

  /** Store `report` as the target's newest run and return what changed since the previous one. */
  async record(report: AuditReport, actor: string | null): Promise<AuditRunDiff> {
    const s = this.store.s;
    const client = await this.store.pool.connect();
    try {
      await client.query('BEGIN');
      // One run at a time per target: the diff is against the run before, never a concurrent one.
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `pgrotate:${this.store.schema}:audit:${report.target}`,
      ]);
      const earlier = await client.query(`SELECT 1 FROM ${s}.audit_runs WHERE target = $1 LIMIT 1`, [report.target]);
      const run = await client.query<{ id: string }>(
        `INSERT INTO ${s}.audit_runs (target, actor, report) VALUES ($1, $2, $3) RETURNING id::text AS id`,
        [report.target, actor, JSON.stringify(this.store.redactor.scrubValue(report))],
      );
      const runId = run.rows[0]?.id as string;
      const open = await client.query<{
        id: string;
        check: string;
        subject: string;
        severity: Finding['severity'];
        message: string;
        fix: string;
      }>(
        `SELECT id::text AS id, "check", subject, severity, message, fix FROM ${s}.audit_findings WHERE target = $1 AND resolved_at IS NULL FOR UPDATE`,
        [report.target],
      );
      const key = (f: { check: string; subject: string }) => `${f.check}\u0000${f.subject}`;
      const openByKey = new Map(open.rows.map((r) => [key(r), r]));
      const seen = new Set(report.findings.map(key));
      const added: Finding[] = [];
      for (const f of report.findings) {
        const existing = openByKey.get(key(f));
        if (existing) {
          await client.query(
            `UPDATE ${s}.audit_findings SET last_run_id = $2, severity = $3, message = $4, fix = $5 WHERE id = $1`,
            [existing.id, runId, f.severity, f.message, f.fix],
          );
          continue;
        }
        added.push(f);
        await client.query(
          `INSERT INTO ${s}.audit_findings (target, "check", subject, severity, message, fix, first_run_id, last_run_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
           ON CONFLICT DO NOTHING`,
          [report.target, f.check, f.subject, f.severity, f.message, f.fix, runId],
        );
      }
      // A check that could not run this time says nothing about its findings: keep them open.
      const unchecked = new Set(report.notChecked.map((n) => n.check));
      const resolved = open.rows.filter((r) => !seen.has(key(r)) && !unchecked.has(r.check));
      if (resolved.length > 0) {
        await client.query(
          `UPDATE ${s}.audit_findings SET resolved_at = clock_timestamp(), last_run_id = $2 WHERE id = ANY($1::bigint[])`,
          [resolved.map((r) => r.id), runId],
        );
      }
      await client.query('COMMIT');
      return {
        runId,
        first: earlier.rowCount === 0,
        added,
        resolved: resolved.map((r) => ({
          check: r.check,
          subject: r.subject,
          severity: r.severity,
          message: r.message,
          fix: r.fix,
        })),
      };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** The target's newest stored run, or null. */
  async latest(target: string): Promise<StoredAuditRun | null> {
    const res = await this.store.pool.query<{ id: string; at: Date; actor: string | null; report: AuditReport }>(
      `SELECT id::text AS id, at, actor, report FROM ${this.store.s}.audit_runs r WHERE target = $1 ORDER BY r.id DESC LIMIT 1`,
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
    const s = this.store.s;
    const open = await this.store.pool.query<{ target: string; severity: string; n: number }>(
      `SELECT target, severity, count(*)::int AS n FROM ${s}.audit_findings WHERE resolved_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2`,
    );
    const lastRun = await this.store.pool.query<{ target: string; at: Date }>(
      `SELECT target, max(at) AS at FROM ${s}.audit_runs GROUP BY 1 ORDER BY 1`,
    );
    return { open: open.rows, lastRun: lastRun.rows };
  }

  /**
   * Claim the target's audit if it is due (or has never run), pushing its next run `everyMs`
   * ahead in the same statement; true for exactly one caller per due time.
   */
  async claimDue(target: string, everyMs: number): Promise<boolean> {
    const res = await this.store.pool.query(
      `INSERT INTO ${this.store.s}.audit_schedule AS a (target, next_run_at) VALUES ($1, clock_timestamp() + make_interval(secs => $2 / 1000.0))
       ON CONFLICT (target) DO UPDATE SET next_run_at = EXCLUDED.next_run_at WHERE a.next_run_at <= clock_timestamp()
       RETURNING 1`,
      [target, everyMs],
    );
    return (res.rowCount ?? 0) > 0;
  }
}
