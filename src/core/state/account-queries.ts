import type { StateTables } from './state-tables.js';
import { STATE_SQL } from './state-statements.js';
import type { AccountState, AccountTimes, DueAccount } from './state-types.js';

// Statements on `accounts` (their texts are in state-statements.ts): one row per account
// pgrotate knows, with its schedule, last outcome and the scheduler's claim (queued_at).

/** Record a failure that happened before any rotation record existed (bad input, unreachable). */
export async function recordRefusal(
  db: StateTables,
  account: { name: string; target: string; strategy: string },
  message: string,
): Promise<void> {
  await db.pool.query(STATE_SQL.recordRefusal, [account.name, account.target, account.strategy, message]);
}

/** One account's recorded state, or null. */
export async function getAccount(db: StateTables, name: string): Promise<AccountState | null> {
  const res = await db.pool.query(STATE_SQL.account, [name]);
  return res.rows[0] ? accountFromRow(res.rows[0]) : null;
}

/** Every recorded account, by name. */
export async function listAccounts(db: StateTables): Promise<AccountState[]> {
  const res = await db.pool.query(STATE_SQL.allAccounts);
  return res.rows.map(accountFromRow);
}

/** The due accounts (at most `limit`), oldest due first, and the state database's clock. */
export async function findDueAccounts(db: StateTables, limit: number): Promise<{ due: DueAccount[]; now: number }> {
  const res = await db.pool.query<{ name: string; due_ms: string; now_ms: string }>(STATE_SQL.dueAccounts, [limit]);
  const now = res.rows[0] ? Number(res.rows[0].now_ms) : Date.now();
  return { due: res.rows.map((r) => ({ name: r.name, dueAt: Number(r.due_ms) })), now };
}

/**
 * Claim due accounts for queueing: those not queued within `reofferMs`. Racing ticks skip each
 * other's rows (SKIP LOCKED); the claim is accounts.queued_at.
 */
export async function claimDueAccounts(
  db: StateTables,
  limit: number,
  reofferMs: number,
): Promise<{ due: DueAccount[]; now: number }> {
  const res = await db.pool.query<{ name: string; due_ms: string; now_ms: string }>(STATE_SQL.claimDueAccounts, [
    limit,
    reofferMs,
  ]);
  const now = res.rows[0] ? Number(res.rows[0].now_ms) : Date.now();
  return { due: res.rows.map((r) => ({ name: r.name, dueAt: Number(r.due_ms) })), now };
}

/**
 * Release the claim a tick made at `claimedAt` (ms since epoch, state-database clock). A newer
 * claim (a later tick queued the account again) is left alone.
 */
export async function releaseClaim(db: StateTables, account: string, claimedAt: number): Promise<void> {
  // queued_at has microseconds, claimedAt is floored to the millisecond: same claim if within it.
  await db.pool.query(STATE_SQL.releaseClaim, [account, claimedAt]);
}

/** Rotation times of the named accounts, by name, with the state database's clock. */
export async function accountTimes(db: StateTables, names: string[]): Promise<AccountTimes[]> {
  const res = await db.pool.query<{
    name: string;
    target: string;
    last_rotated_at: Date | null;
    next_due_at: Date | null;
    last_status: string | null;
    now: Date;
  }>(STATE_SQL.accountTimes, [names]);
  return res.rows.map((r) => ({
    name: r.name,
    target: r.target,
    lastRotatedAt: r.last_rotated_at,
    nextDueAt: r.next_due_at,
    lastStatus: r.last_status,
    now: r.now,
  }));
}

/** The named accounts whose next due time passed more than `afterMs` ago, oldest first. */
export async function overdueAccounts(
  db: StateTables,
  names: string[],
  afterMs: number,
): Promise<Array<{ name: string; target: string; nextDueAt: Date }>> {
  const res = await db.pool.query<{ name: string; target: string; next_due_at: Date }>(STATE_SQL.overdueAccounts, [
    afterMs,
    names,
  ]);
  return res.rows.map((r) => ({ name: r.name, target: r.target, nextDueAt: r.next_due_at }));
}

/** After rotation `rotationId` succeeded: the account's next due time and the schedule it was planned with. */
export async function planNextDue(
  db: StateTables,
  account: string,
  rotationId: string,
  next: Date | null,
  scheduleKey: string,
): Promise<void> {
  await db.pool.query(STATE_SQL.planNextDue, [account, next, scheduleKey, rotationId]);
}

/**
 * A job gave up: mark the account failed and due again after `cooldownMs`. A failed request (not
 * `scheduled`) must not push the scheduled rotation later: it is due after the cool-down or its
 * own due time, whichever is first. Returns the new due time (null: no such account).
 */
export async function coolDownAccount(
  db: StateTables,
  account: string,
  cooldownMs: number,
  message: string,
  scheduled: boolean,
): Promise<Date | null> {
  const res = await db.pool.query<{ next: Date }>(STATE_SQL.coolDownAccount, [account, cooldownMs, message, scheduled]);
  return res.rows[0]?.next ?? null;
}

function accountFromRow(r: Record<string, unknown>): AccountState {
  return {
    name: r.name as string,
    target: r.target as string,
    strategy: r.strategy as string,
    activeRole: r.active_role as string | null,
    lastRotationId: r.last_rotation_id as string | null,
    lastRotatedAt: r.last_rotated_at as Date | null,
    oldCredentialExpiresAt: r.old_credential_expires_at as Date | null,
    nextDueAt: r.next_due_at as Date | null,
    lastStatus: r.last_status as string | null,
    lastError: r.last_error as string | null,
    consecutiveFailures: r.consecutive_failures as number,
    warnings: (r.warnings as string[] | null) ?? [],
    adoptedAt: (r.adopted_at as Date | null | undefined) ?? null,
    adoptedFrom: (r.adopted_from as Date | null | undefined) ?? null,
    adoptRefusal: (r.adopt_refusal as string | null | undefined) ?? null,
  };
}

/** Of the named accounts, those still to adopt (never rotated nor adopted), with their last refusal. */
export async function adoptionCandidates(
  db: StateTables,
  names: string[],
): Promise<Array<{ name: string; refusal: string | null }>> {
  const res = await db.pool.query<{ name: string; adopt_refusal: string | null }>(STATE_SQL.adoptionCandidates, [
    names,
  ]);
  return res.rows.map((r) => ({ name: r.name, refusal: r.adopt_refusal }));
}

/** Record an adoption and its audit event; false when the account is no longer a candidate. */
export async function adoptAccount(
  db: StateTables,
  a: { name: string; lastChanged: Date | null; activeRole: string; nextDueAt: Date | null; actor: string },
  detail: Record<string, unknown>,
): Promise<boolean> {
  const res = await db.pool.query(STATE_SQL.adoptAccount, [
    a.name,
    a.lastChanged,
    a.activeRole,
    a.nextDueAt,
    a.actor,
    JSON.stringify(detail),
  ]);
  return (res.rowCount ?? 0) > 0;
}

/** Record why an account's secret was not adopted (it is not due until fixed); audited when the reason is new. */
export async function refuseAdoption(db: StateTables, name: string, reason: string, actor: string): Promise<void> {
  await db.pool.query(STATE_SQL.refuseAdoption, [name, reason, actor, JSON.stringify({ reason })]);
}
