import { blankRunResult, type RunResult } from '../../jobs/rotation-runner.js';
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
      r.error?.message.split('\n')[0] ?? r.detail ?? (r.warnings.length ? `warning: ${r.warnings.join('; ')}` : r.resumed ? 'resumed' : ''),
    ]),
  );
}

/** A failed job's outcome as a result line (its reason is already scrubbed by the worker). */
export function failedResult(account: string, message: string, permanent = false): RunResult {
  return blankRunResult(account, null, { outcome: 'failed', error: { type: 'RotationFailed', message, permanent } });
}
