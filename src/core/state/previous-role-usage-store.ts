import type { StateTables } from './state-tables.js';
import { STATE_SQL } from './state-statements.js';

// The state of "who still uses the previous login" (migration 6): per alternating account in
// grace, the newest sample of its previous role's sessions and the once-only facts (alert sent,
// expired early, final check done), each claimed with one UPDATE so that any number of
// processes sampling act once.

/** Who was connected as a role: one application name and client address, with how many sessions. */
export interface RoleClient {
  applicationName: string | null;
  clientAddr: string | null;
  sessions: number;
}

/** An alternating account whose previous role is in grace (or expired and not yet finally checked). */
export interface AccountInGrace {
  account: string;
  target: string;
  rotationId: string;
  role: string;
  /** When the account switched to its current role (the grace counts from here). */
  switchedAt: Date;
  /** The previous role's recorded VALID UNTIL. */
  expiresAt: Date;
  /** The stored sample, null before the first. */
  sample: StoredUsageSample | null;
  alertedAt: Date | null;
  expiredAt: Date | null;
  /** The state database's clock when read. */
  now: Date;
}

/** A stored sample of a previous role's sessions. */
export interface StoredUsageSample {
  sampledAt: Date;
  sessions: number;
  clients: RoleClient[];
  oldestBackendStart: Date | null;
  /** The last sample that saw a session, or the switch. */
  lastUsedAt: Date;
}

/** One sample to store. */
export interface NewUsageSample {
  account: string;
  rotationId: string;
  target: string;
  role: string;
  switchedAt: Date;
  sessions: number;
  clients: RoleClient[];
  oldestBackendStart: Date | null;
}

interface GraceRow {
  account: string;
  target: string;
  rotation_id: string;
  role: string;
  switched_at: Date;
  expires_at: Date;
  sampled_at: Date | null;
  sessions: number | null;
  clients: RoleClient[] | null;
  oldest_backend_start: Date | null;
  last_used_at: Date | null;
  alerted_at: Date | null;
  expired_at: Date | null;
  now: Date;
}

/** Reads and writes previous_role_usage. */
export class PreviousRoleUsageStore {
  constructor(private readonly db: StateTables) {}

  /** Accounts in grace, and those whose previous role expired less than `lookbackMs` ago and were not finally checked. */
  async accountsInGrace(lookbackMs: number): Promise<AccountInGrace[]> {
    const res = await this.db.pool.query<GraceRow>(STATE_SQL.accountsInGrace, [lookbackMs]);
    return res.rows.map((r) => ({
      account: r.account,
      target: r.target,
      rotationId: r.rotation_id,
      role: r.role,
      switchedAt: r.switched_at,
      expiresAt: r.expires_at,
      sample:
        r.sampled_at && r.last_used_at
          ? {
              sampledAt: r.sampled_at,
              sessions: r.sessions ?? 0,
              clients: r.clients ?? [],
              oldestBackendStart: r.oldest_backend_start,
              lastUsedAt: r.last_used_at,
            }
          : null,
      alertedAt: r.alerted_at,
      expiredAt: r.expired_at,
      now: r.now,
    }));
  }

  /** Store one tick's samples in one statement; returns each account's last-used time. */
  async recordSamples(samples: NewUsageSample[]): Promise<Map<string, Date>> {
    if (samples.length === 0) return new Map();
    const rows = samples.map((s) => ({
      account: s.account,
      rotation_id: s.rotationId,
      target: s.target,
      role: s.role,
      sessions: s.sessions,
      clients: this.db.redactor.scrubValue(s.clients),
      oldest: s.oldestBackendStart?.toISOString() ?? null,
      switched_at: s.switchedAt.toISOString(),
    }));
    const res = await this.db.pool.query<{ account: string; last_used_at: Date }>(STATE_SQL.recordUsageSamples, [
      JSON.stringify(rows),
    ]);
    return new Map(res.rows.map((r) => [r.account, r.last_used_at]));
  }

  /** Claim the still-in-use alert of the account's rotation; true for the one caller that sends it. */
  async claimAlert(account: string, rotationId: string): Promise<boolean> {
    return (await this.db.pool.query(STATE_SQL.claimUsageAlert, [account, rotationId])).rowCount === 1;
  }

  /** Claim the check after the expiry; true for the one caller that reports what it found. */
  async claimFinal(account: string, rotationId: string): Promise<boolean> {
    return (await this.db.pool.query(STATE_SQL.claimUsageFinal, [account, rotationId])).rowCount === 1;
  }

  /** Record that the previous role expired at `at` (before its grace ended) with its audit event; false when the rotation is no longer the account's last. */
  async recordEarlyExpiry(
    account: string,
    rotationId: string,
    at: Date,
    event: { kind: string; detail: Record<string, unknown> },
  ): Promise<boolean> {
    const detail = JSON.stringify(this.db.redactor.scrubValue(event.detail));
    const res = await this.db.pool.query<{ n: number }>(STATE_SQL.recordEarlyExpiry, [
      account,
      rotationId,
      at,
      event.kind,
      detail,
    ]);
    return (res.rows[0]?.n ?? 0) > 0;
  }

  /** The newest session count of every previous role not finally checked (for /metrics). */
  async sessionsByAccount(): Promise<Array<{ account: string; role: string; sessions: number; sampledAt: Date }>> {
    const res = await this.db.pool.query<{ account: string; role: string; sessions: number; sampled_at: Date }>(
      STATE_SQL.previousRoleSessions,
    );
    return res.rows.map((r) => ({ account: r.account, role: r.role, sessions: r.sessions, sampledAt: r.sampled_at }));
  }
}
