import type { App } from '../../../core/app.js';
import { SEVERITIES, severityRank, type AuditReport, type Severity } from '../../../core/audit/audit-types.js';
import { auditAndRecord } from '../../../services/audit/audit-service.js';
import { runSecurityAudit } from '../../../services/audit/security-audit.js';
import { ConfigError, ExitCode } from '../../../core/errors.js';
import { table, type CliIo } from '../cli-io.js';
import { requester } from './rotate-command.js';

export interface AuditArgs {
  target: string;
  json: boolean;
  failOn: Severity;
  /** Print only what changed since the last stored run, and store this run as the new baseline. */
  sinceLast?: boolean;
}

/** Parse --fail-on. */
export function parseSeverity(text: string): Severity {
  if ((SEVERITIES as readonly string[]).includes(text) && text !== 'info') return text as Severity;
  throw new ConfigError(`--fail-on must be one of low, medium, high, critical (not "${text}")`);
}

/**
 * `pgrotate audit TARGET [--json] [--fail-on SEVERITY]`: the inventory and least-privilege
 * review of one target, as its admin login. Exits 1 when a finding at or above --fail-on exists.
 */
export async function auditCommand(app: App, args: AuditArgs, io: CliIo): Promise<number> {
  if (!(args.target in app.config.targets)) {
    throw new ConfigError(
      `unknown target "${args.target}" (configured: ${Object.keys(app.config.targets).join(', ') || 'none'})`,
      { target: args.target },
    );
  }
  if (args.sinceLast) return sinceLast(app, args, io);
  const rotatedAt = new Map((await app.state.listAccounts()).map((a) => [a.name, a.lastRotatedAt]));
  const report = await app.targets.withAdmin(args.target, undefined, (client) =>
    runSecurityAudit({ client, config: app.config, target: args.target, rotatedAt }),
  );
  const failing = report.findings.filter((f) => severityRank(f.severity) >= severityRank(args.failOn)).length;
  await app.state.audit({
    kind: 'security-audit.completed',
    actor: requester(io.env),
    detail: {
      target: args.target,
      counts: report.counts,
      notChecked: report.notChecked.map((n) => n.check),
      failOn: args.failOn,
      failing,
    },
  });
  if (args.json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else io.stdout.write(renderReport(report, args.failOn, failing));
  return failing > 0 ? ExitCode.failed : ExitCode.ok;
}

/**
 * `audit TARGET --since-last`: run, store as the new baseline (as a scheduled run does), print
 * the findings that are new and those resolved since the stored run before; exit 1 on a new
 * finding at or above --fail-on.
 */
async function sinceLast(app: App, args: AuditArgs, io: CliIo): Promise<number> {
  const { report, diff } = await auditAndRecord(
    { config: app.config, state: app.state, runs: app.auditRuns, targets: app.targets, alerts: app.alerts },
    args.target,
    requester(io.env),
  );
  const failing = diff.added.filter((f) => severityRank(f.severity) >= severityRank(args.failOn)).length;
  if (args.json) {
    io.stdout.write(
      `${JSON.stringify({ target: args.target, runId: diff.runId, checkedAt: report.checkedAt, firstRun: diff.first, new: diff.added, resolved: diff.resolved, notChecked: report.notChecked }, null, 2)}\n`,
    );
  } else {
    const out: string[] = [
      `target ${args.target}: audit run ${diff.runId} at ${report.checkedAt}${diff.first ? ' (first stored run: every finding is new)' : ', changes since the last stored run'}`,
    ];
    out.push(`New (${diff.added.length}):`);
    if (diff.added.length === 0) out.push('  none');
    for (const f of diff.added)
      out.push(`  [${f.severity.toUpperCase()}] ${f.check} ${f.subject}: ${f.message}`, `      fix: ${f.fix}`);
    out.push(`Resolved (${diff.resolved.length}):`);
    if (diff.resolved.length === 0) out.push('  none');
    for (const f of diff.resolved) out.push(`  [${f.severity.toUpperCase()}] ${f.check} ${f.subject}`);
    if (report.notChecked.length > 0)
      out.push('Not checked:', ...report.notChecked.map((n) => `  ${n.check}: ${n.reason}`));
    out.push(
      failing > 0
        ? `${failing} new finding(s) at or above ${args.failOn}`
        : `no new finding at or above ${args.failOn}`,
    );
    io.stdout.write(`${out.join('\n')}\n`);
  }
  return failing > 0 ? ExitCode.failed : ExitCode.ok;
}

function renderReport(r: AuditReport, failOn: Severity, failing: number): string {
  const out: string[] = [];
  out.push(
    `target ${r.target}: PostgreSQL ${r.serverVersion}, audited as ${r.admin.role}${r.admin.superuser ? ' (superuser)' : ''} at ${r.checkedAt}`,
    '',
  );
  out.push('Login roles:');
  out.push(
    table(
      ['ROLE', 'MANAGED', 'ACCOUNT', 'CREDENTIAL AGE', 'ATTRIBUTES', 'VALID UNTIL'],
      r.roles.map((x) => [
        x.name,
        x.managed ? 'yes' : 'no',
        x.account ?? '-',
        x.credentialAgeDays === null ? (x.managed ? 'never rotated' : 'unknown') : `${x.credentialAgeDays}d`,
        x.attributes.join(',') || '-',
        x.validUntil ?? 'never',
      ]),
    ),
  );
  out.push(
    `Findings (${SEVERITIES.slice()
      .reverse()
      .map((s) => `${r.counts[s]} ${s}`)
      .join(', ')}):`,
  );
  if (r.findings.length === 0) out.push('  none');
  for (const f of r.findings) {
    out.push(`  [${f.severity.toUpperCase()}] ${f.check} ${f.subject}: ${f.message}`);
    out.push(`      fix: ${f.fix}`);
  }
  if (r.notChecked.length > 0) {
    out.push('', 'Not checked (the admin login cannot read it; this is not a clean result):');
    for (const n of r.notChecked) out.push(`  ${n.check}: ${n.reason}`);
  }
  out.push('', failing > 0 ? `${failing} finding(s) at or above ${failOn}` : `no finding at or above ${failOn}`);
  return `${out.join('\n')}\n`;
}
