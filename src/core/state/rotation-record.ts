// The durable record of one rotation, as stored in `<schema>.rotations`.

/** Protocol steps, in order; `step` on a record is the last one completed. */
export const STEPS = ['created', 'staged', 'applied', 'verified', 'promoted', 'recorded'] as const;
export type Step = (typeof STEPS)[number];

export type RotationStatus = 'running' | 'succeeded' | 'failed';

export interface RotationRecord {
  id: string;
  account: string;
  strategy: 'single-user' | 'alternating';
  status: RotationStatus;
  step: Step;
  targetRole: string;
  previousRole: string | null;
  reason: string | null;
  requestedBy: string | null;
  terminateSessions: boolean;
  attempts: number;
  startedAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  appliedAt: Date | null;
  oldCredentialExpiresAt: Date | null;
  sessionsEnded: number | null;
  error: string | null;
}

export interface RotationRow {
  id: string;
  account: string;
  strategy: string;
  status: string;
  step: string;
  target_role: string;
  previous_role: string | null;
  reason: string | null;
  requested_by: string | null;
  terminate_sessions: boolean;
  attempts: number;
  started_at: Date;
  updated_at: Date;
  finished_at: Date | null;
  applied_at: Date | null;
  old_credential_expires_at: Date | null;
  sessions_ended: number | null;
  error: string | null;
}

/** Map a database row to the record type. */
export function rotationFromRow(r: RotationRow): RotationRecord {
  return {
    id: r.id,
    account: r.account,
    strategy: r.strategy as RotationRecord['strategy'],
    status: r.status as RotationStatus,
    step: r.step as Step,
    targetRole: r.target_role,
    previousRole: r.previous_role,
    reason: r.reason,
    requestedBy: r.requested_by,
    terminateSessions: r.terminate_sessions,
    attempts: r.attempts,
    startedAt: r.started_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
    appliedAt: r.applied_at,
    oldCredentialExpiresAt: r.old_credential_expires_at,
    sessionsEnded: r.sessions_ended,
    error: r.error,
  };
}
