import { randomUUID } from 'node:crypto';

// What a rotation job carries: ids and reasons only (invariant I4). Never a password, never a
// secret path's contents; the worker reads everything else from the config and the state DB.

export const ROTATION_QUEUE = 'pgrotate-rotations';
export const TICK_QUEUE = 'pgrotate-scheduler';
export const TICK_SCHEDULER_ID = 'pgrotate-scheduler-tick';

export type JobKind = 'scheduled' | 'on-demand' | 'offboard';

export interface RotationJobData {
  account: string;
  kind: JobKind;
  reason: string | null;
  requestedBy: string;
  /** BullMQ priority (lower runs first); also recorded for the audit trail. */
  priority: number;
  terminateSessions: boolean;
  /** State-database time of the request (ms since epoch); a rotation started after it satisfies the job. */
  requestedAt: number;
  /** For scheduled jobs: the account's next_due_at the job was queued for (ms since epoch). */
  dueAt: number | null;
}

/** Priorities: offboarding before on-demand before scheduled work. */
export const PRIORITY: Record<JobKind, number> = { offboard: 1, 'on-demand': 5, scheduled: 10 };

/** Deterministic id: one scheduled job per account and due time, however many ticks race. */
export function scheduledJobId(account: string, dueAt: number): string {
  return `rotate:${account}:${dueAt}`;
}

/** A fresh id for a request made by a person or an API caller. */
export function requestJobId(kind: JobKind, account: string): string {
  return `${kind}:${account}:${randomUUID()}`;
}
