import type { RunResult } from '../../core/rotation/run-result.js';
import { table } from './cli-io.js';

/** Text table of requested rotations, one line each. */
export function runResultsTable(results: RunResult[]): string {
  return table(
    ['ACCOUNT', 'OUTCOME', 'ROLE', 'OLD CREDENTIAL EXPIRES', 'NEXT DUE', 'SESSIONS ENDED', 'DETAIL'],
    results.map((r) => [
      r.account,
      r.outcome,
      r.role ?? '-',
      r.oldCredentialExpiresAt?.replace(/\.\d{3}Z$/, 'Z') ?? '-',
      r.nextDueAt?.replace(/\.\d{3}Z$/, 'Z') ?? '-',
      r.sessionsEnded === null ? '-' : String(r.sessionsEnded),
      r.error?.message.split('\n')[0] ??
        r.detail ??
        (r.warnings.length ? `warning: ${r.warnings.join('; ')}` : r.resumed ? 'resumed' : ''),
    ]),
  );
}
