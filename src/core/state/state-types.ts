// Shapes of the state database's rows as the rest of pgrotate sees them (no SQL here).

export interface AccountState {
  name: string;
  target: string;
  strategy: string;
  activeRole: string | null;
  lastRotationId: string | null;
  lastRotatedAt: Date | null;
  oldCredentialExpiresAt: Date | null;
  nextDueAt: Date | null;
  lastStatus: string | null;
  lastError: string | null;
  consecutiveFailures: number;
  /** Warnings of the last successful rotation. */
  warnings: string[];
  /** When pgrotate adopted the account's existing secret (onboard: adopt), else null. */
  adoptedAt: Date | null;
  /** The adopted value's last-changed time in its store, when the store gave one. */
  adoptedFrom: Date | null;
  /** Why the secret could not be adopted (redacted), until it is adopted or rotated. */
  adoptRefusal: string | null;
}

export interface AuditEvent {
  id: string;
  at: Date;
  account: string | null;
  rotationId: string | null;
  kind: string;
  actor: string | null;
  detail: Record<string, unknown>;
}

export interface NewAuditEvent {
  account?: string | null;
  rotationId?: string | null;
  kind: string;
  actor?: string | null;
  detail?: Record<string, unknown>;
}

export interface DueAccount {
  name: string;
  /** next_due_at in ms since epoch (a scheduled job id's second part). */
  dueAt: number;
}

/** An account's rotation times as metrics and alerts read them, with the state database's clock. */
export interface AccountTimes {
  name: string;
  target: string;
  lastRotatedAt: Date | null;
  nextDueAt: Date | null;
  lastStatus: string | null;
  /** The state database's now() when read. */
  now: Date;
}

/** What a requested rotation asked for, as the state database compares it with finished rotations. */
export interface RequestFacts {
  /** State-database time of the request, ms since epoch. */
  requestedAt: number;
  terminateSessions: boolean;
}

/** The facts that decide whether a request still needs a rotation of its own (read under the fence). */
export interface RequestStanding {
  /** The account has an unfinished rotation (it is always resumed). */
  running: boolean;
  /** The newest rotation that did everything the request asked for, if any. */
  doneId: string | null;
  /** Sessions ended for the request: by doneId, and (when it ends sessions) by every rotation since it that ended sessions. */
  doneSessionsEnded: number | null;
  /** The account is not due (next_due_at unset or in the future). */
  notDue: boolean;
}
