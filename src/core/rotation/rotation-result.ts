import type { PgrotateError } from '../errors.js';
import type { RestartOutcome } from './workload-restart.js';

// What one rotation attempt reports: the engine's result before its JSON shape (rotation-result-json.ts).

export type RotationOutcome = 'succeeded' | 'failed' | 'dry-run' | 'busy' | 'skipped';

export interface RotationResult {
  account: string;
  target: string;
  outcome: RotationOutcome;
  rotationId: string | null;
  role: string | null;
  oldCredentialExpiresAt: Date | null;
  nextDueAt: Date | null;
  sessionsEnded: number | null;
  resumed: boolean;
  error: PgrotateError | null;
  /** Facts a person should act on although the rotation succeeded. */
  warnings: string[];
  /** Why nothing was done (a skipped rotation), else null. */
  detail: string | null;
  /** The workloads restarted (or not) after the promote; empty when the account names none. */
  restarts: RestartOutcome[];
}

/** A result with nothing done yet (outcome failed until something else is known). */
export function newRotationResult(account: string, target: string): RotationResult {
  return {
    account,
    target,
    outcome: 'failed',
    rotationId: null,
    role: null,
    oldCredentialExpiresAt: null,
    nextDueAt: null,
    sessionsEnded: null,
    resumed: false,
    error: null,
    warnings: [],
    detail: null,
    restarts: [],
  };
}
