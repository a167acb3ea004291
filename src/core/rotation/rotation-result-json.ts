import { isPermanentError } from '../errors.js';
import type { RotationOutcome, RotationResult } from './rotation-result.js';

/** The documented JSON shape of one rotation's result (`rotate --json`, jobs, the HTTP API). */
export interface RotationResultJson {
  account: string;
  target: string | null;
  outcome: RotationOutcome;
  rotationId: string | null;
  role: string | null;
  oldCredentialExpiresAt: string | null;
  nextDueAt: string | null;
  sessionsEnded: number | null;
  resumed: boolean;
  /** `permanent`: retrying cannot help (a missing role or privilege, a refused permission). */
  error: { type: string; message: string; permanent: boolean } | null;
  /** Facts a successful rotation wants a person to act on (a VALID UNTIL before the next due time, a full connection limit). */
  warnings: string[];
  /** Why nothing was done (a skipped request, an account this process does not know). */
  detail: string | null;
  /** The workloads of the account's `restart:` list after the promote: restarted, or why not. */
  restarts: Array<{ kind: string; namespace: string; name: string; restarted: boolean; problem: string | null }>;
}

/** The engine's result with times as ISO text and the error as type + message. */
export function rotationResultJson(r: RotationResult): RotationResultJson {
  return {
    account: r.account,
    target: r.target,
    outcome: r.outcome,
    rotationId: r.rotationId,
    role: r.role,
    oldCredentialExpiresAt: r.oldCredentialExpiresAt?.toISOString() ?? null,
    nextDueAt: r.nextDueAt?.toISOString() ?? null,
    sessionsEnded: r.sessionsEnded,
    resumed: r.resumed,
    error: r.error ? { type: r.error.name, message: r.error.message, permanent: isPermanentError(r.error) } : null,
    warnings: r.warnings,
    detail: r.detail,
    restarts: r.restarts.map((o) => ({ ...o.workload, restarted: o.restarted, problem: o.problem })),
  };
}
