import pg from 'pg';
import { StateStoreError, messageOf } from '../errors.js';
import type { Redactor } from '../logging/redactor.js';
import { CredentialPool } from '../pg/credential-pool.js';
import type { LiveCredential } from '../pg/live-credential.js';
import { quoteIdent } from '../pg/quote.js';
import { ResilientClient } from '../pg/resilient-client.js';
import { migrate } from './migrations.js';
import { RotationFence } from './rotation-fence.js';
import { rotationFromRow, type RotationRecord, type RotationRow } from './rotation-record.js';

// The control database: per-account state, rotation records and the audit trail. Nothing
// secret is ever written here; audit details pass through the redactor as a last guard.

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

export interface StateStoreOptions {
  pool: pg.Pool;
  schema: string;
  redactor: Redactor;
}

/** Access to pgrotate's tables in the state database. */
export class StateStore {
  readonly pool: pg.Pool;
  readonly schema: string;
  /** The schema name, quoted for SQL. */
  readonly s: string;
  readonly redactor: Redactor;

  constructor(opts: StateStoreOptions) {
    this.pool = opts.pool;
    this.schema = opts.schema;
    this.s = quoteIdent(opts.schema);
    this.redactor = opts.redactor;
  }

  /** Connect, migrate, and return a ready store. */
  static async open(opts: { connection: pg.PoolConfig; schema: string; redactor: Redactor; credential?: LiveCredential }): Promise<StateStore> {
    // A state login that pgrotate rotates itself follows its provider (see LiveCredential).
    const pool = opts.credential ? new CredentialPool({ max: 10, ...opts.connection }, opts.credential) : new pg.Pool({ max: 10, ...opts.connection, Client: ResilientClient });
    // Clients that lose their server must not crash the process; the loss surfaces on the next
    // query instead (for a fence: as FenceLostError). Attached once per physical connection.
    pool.on('error', () => undefined);
    const store = new StateStore({ pool, schema: opts.schema, redactor: opts.redactor });
    try {
      await migrate(pool, opts.schema);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new StateStoreError(`state database: ${opts.redactor.scrub(messageOf(err))}`, { cause: err });
    }
    return store;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /**
   * Try to take the per-account fence (invariant I3). Returns null when another live process
   * holds it. The fence is a session advisory lock on a dedicated connection; every write of the
   * rotation goes through that connection, so losing it (crash, network) loses the right to write.
   */
  async tryAcquireFence(account: string): Promise<RotationFence | null> {
    const client = await this.pool.connect();
    try {
      const key = `pgrotate:${this.schema}:${account}`;
      const res = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked', [key]);
      if (!res.rows[0]?.locked) {
        client.release();
        return null;
      }
      return new RotationFence(this, client, account, key);
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
  }

  /** Append an audit event through any connection. */
  async audit(event: NewAuditEvent, client: pg.ClientBase | pg.Pool = this.pool): Promise<void> {
    const detail = this.redactor.scrubValue(event.detail ?? {});
    await client.query(`INSERT INTO ${this.s}.audit_events (account, rotation_id, kind, actor, detail) VALUES ($1, $2, $3, $4, $5)`, [
      event.account ?? null,
      event.rotationId ?? null,
      event.kind,
      event.actor ?? null,
      JSON.stringify(detail),
    ]);
  }

  /** Record a failure that happened before any rotation record existed (bad input, unreachable). */
  async recordRefusal(account: { name: string; target: string; strategy: string }, error: string, actor: string | null): Promise<void> {
    const message = this.redactor.scrub(error);
    await this.pool.query(
      `INSERT INTO ${this.s}.accounts (name, target, strategy, last_status, last_error, consecutive_failures, updated_at)
       VALUES ($1, $2, $3, 'failed', $4, 1, now())
       ON CONFLICT (name) DO UPDATE SET last_status = 'failed', last_error = EXCLUDED.last_error,
         consecutive_failures = ${this.s}.accounts.consecutive_failures + 1, updated_at = now()`,
      [account.name, account.target, account.strategy, message],
    );
    await this.audit({ account: account.name, kind: 'rotation.refused', actor, detail: { error: message } });
  }

  async getAccount(name: string): Promise<AccountState | null> {
    const res = await this.pool.query(`SELECT * FROM ${this.s}.accounts WHERE name = $1`, [name]);
    return res.rows[0] ? accountFromRow(res.rows[0]) : null;
  }

  async listAccounts(): Promise<AccountState[]> {
    const res = await this.pool.query(`SELECT * FROM ${this.s}.accounts ORDER BY name`);
    return res.rows.map(accountFromRow);
  }

  /** The unfinished rotation of an account, if any. */
  async runningRotation(account: string): Promise<RotationRecord | null> {
    const res = await this.pool.query<RotationRow>(`SELECT * FROM ${this.s}.rotations WHERE account = $1 AND status = 'running'`, [account]);
    return res.rows[0] ? rotationFromRow(res.rows[0]) : null;
  }

  /** Audit events of one account, oldest first. */
  async history(account: string, limit = 200): Promise<AuditEvent[]> {
    const res = await this.pool.query(
      `SELECT * FROM (SELECT * FROM ${this.s}.audit_events WHERE account = $1 ORDER BY id DESC LIMIT $2) e ORDER BY id`,
      [account, limit],
    );
    return res.rows.map((r) => ({
      id: String(r.id),
      at: r.at as Date,
      account: r.account as string | null,
      rotationId: r.rotation_id as string | null,
      kind: r.kind as string,
      actor: r.actor as string | null,
      detail: r.detail as Record<string, unknown>,
    }));
  }
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
  };
}
