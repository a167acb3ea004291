import pg from 'pg';
import { StateStoreError, messageOf } from '../errors.js';
import type { Redactor } from '../logging/redactor.js';
import { CredentialPool } from '../pg/credential-pool.js';
import type { LiveCredential } from '../pg/live-credential.js';
import { ResilientClient } from '../pg/resilient-client.js';
import * as accounts from './account-queries.js';
import { syncAccountRows, type ChangedAccount, type PlannedAccount } from './account-sync-queries.js';
import { accountHistory } from './audit-event-queries.js';
import { AuditRunStore } from './audit-run-store.js';
import { WebhookOutboxStore } from './webhook-outbox-store.js';
import { migrate } from './migrations.js';
import { PreviousRoleUsageStore } from './previous-role-usage-store.js';
import { RotationFence } from './rotation-fence.js';
import type { RotationRecord } from './rotation-record.js';
import * as rotations from './rotation-queries.js';
import { STATE_SQL } from './state-statements.js';
import { withStateSearchPath } from './state-search-path.js';
import { StateTables } from './state-tables.js';
import type {
  AccountState,
  AccountTimes,
  AuditEvent,
  DueAccount,
  NewAuditEvent,
  RequestFacts,
  RequestStanding,
} from './state-types.js';

export type {
  AccountState,
  AccountTimes,
  AuditEvent,
  DueAccount,
  NewAuditEvent,
  RequestFacts,
  RequestStanding,
} from './state-types.js';
export type { ChangedAccount, PlannedAccount } from './account-sync-queries.js';
export type { OutboxAlert, OutboxBacklog, OutboxDelivery, WebhookOutboxStore } from './webhook-outbox-store.js';

// The control database: per-account state, rotation records and the audit trail. Nothing
// secret is ever written here; audit details pass through the redactor as a last guard. Every
// statement is a named one of state-statements.ts, sent by a module of this folder; the pool and
// the schema stay private.

export interface StateStoreOptions {
  pool: pg.Pool;
  schema: string;
  redactor: Redactor;
}

/** Access to pgrotate's tables in the state database. */
export class StateStore {
  private readonly db: StateTables;
  /** Stored security-audit runs and findings. */
  readonly auditRuns: AuditRunStore;
  /** The webhook outbox: deliveries that survive the process that queued them. */
  readonly outbox: WebhookOutboxStore;
  /** Who still uses the previous login of alternating accounts (samples and once-only facts). */
  readonly previousRoleUsage: PreviousRoleUsageStore;

  private constructor(opts: StateStoreOptions) {
    this.db = new StateTables(opts.pool, opts.schema, opts.redactor);
    this.auditRuns = new AuditRunStore(this.db);
    this.outbox = new WebhookOutboxStore(this.db);
    this.previousRoleUsage = new PreviousRoleUsageStore(this.db);
  }

  /** Connect, migrate, and return a ready store. */
  static async open(opts: {
    connection: pg.PoolConfig;
    schema: string;
    redactor: Redactor;
    credential?: LiveCredential;
  }): Promise<StateStore> {
    // Every connection resolves the state statements' unqualified names in the schema.
    const connection = {
      max: 10,
      ...opts.connection,
      options: withStateSearchPath(opts.schema, opts.connection.options),
    };
    // A state login that pgrotate rotates itself follows its provider (see LiveCredential).
    const pool = opts.credential
      ? new CredentialPool(connection, opts.credential)
      : new pg.Pool({ ...connection, Client: ResilientClient });
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
    await this.db.pool.end();
  }

  /** Fails unless the state database answers (readiness). */
  async ping(): Promise<void> {
    await this.db.pool.query(STATE_SQL.ping);
  }

  /** The state database's clock in ms since epoch: requests and rotations are compared on one clock. */
  async now(): Promise<number> {
    const res = await this.db.pool.query<{ ms: string }>(STATE_SQL.clockMs);
    return Number(res.rows[0]?.ms ?? Date.now());
  }

  /**
   * Try to take the per-account fence (invariant I3). Returns null when another live process
   * holds it. The fence is a session advisory lock on a dedicated connection; every write of the
   * rotation goes through that connection, so losing it (crash, network) loses the right to write.
   */
  async tryAcquireFence(account: string): Promise<RotationFence | null> {
    const client = await this.db.pool.connect();
    try {
      const fence = await RotationFence.tryAcquire(this.db, client, account);
      if (!fence) client.release();
      return fence;
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
  }

  /** Append an audit event. */
  async audit(event: NewAuditEvent): Promise<void> {
    await this.db.audit(event);
  }

  /** Record a failure that happened before any rotation record existed (bad input, unreachable). */
  async recordRefusal(
    account: { name: string; target: string; strategy: string },
    error: string,
    actor: string | null,
  ): Promise<void> {
    const message = this.db.redactor.scrub(error);
    await accounts.recordRefusal(this.db, account, message);
    await this.audit({ account: account.name, kind: 'rotation.refused', actor, detail: { error: message } });
  }

  async getAccount(name: string): Promise<AccountState | null> {
    return accounts.getAccount(this.db, name);
  }

  async listAccounts(): Promise<AccountState[]> {
    return accounts.listAccounts(this.db);
  }

  /** The unfinished rotation of an account, if any. */
  async runningRotation(account: string): Promise<RotationRecord | null> {
    return rotations.runningRotation(this.db, account);
  }

  /** Names of the accounts with an unfinished rotation. */
  async accountsWithRunningRotation(): Promise<Set<string>> {
    return rotations.accountsWithRunningRotation(this.db);
  }

  /** Audit events of one account, oldest first. */
  async history(account: string, limit = 200): Promise<AuditEvent[]> {
    return accountHistory(this.db, account, limit);
  }

  /** The due accounts (at most `limit`) and the state database's clock. */
  async findDueAccounts(limit: number): Promise<{ due: DueAccount[]; now: number }> {
    return accounts.findDueAccounts(this.db, limit);
  }

  /** Claim due accounts not queued within `reofferMs` (see account-queries.ts). */
  async claimDueAccounts(limit: number, reofferMs: number): Promise<{ due: DueAccount[]; now: number }> {
    return accounts.claimDueAccounts(this.db, limit, reofferMs);
  }

  /** Release the scheduler's claim on `account` made at `claimedAt` (ms, state-database clock). */
  async releaseClaim(account: string, claimedAt: number): Promise<void> {
    await accounts.releaseClaim(this.db, account, claimedAt);
  }

  /** Rotation times of the named accounts, with the state database's clock. */
  async accountTimes(names: string[]): Promise<AccountTimes[]> {
    return accounts.accountTimes(this.db, names);
  }

  /** The named accounts whose due time passed more than `afterMs` ago. */
  async overdueAccounts(
    names: string[],
    afterMs: number,
  ): Promise<Array<{ name: string; target: string; nextDueAt: Date }>> {
    return accounts.overdueAccounts(this.db, names, afterMs);
  }

  /** After rotation `rotationId` succeeded: the account's next due time and its schedule key. */
  async planNextDue(account: string, rotationId: string, next: Date | null, scheduleKey: string): Promise<void> {
    await accounts.planNextDue(this.db, account, rotationId, next, scheduleKey);
  }

  /** Mark the account failed (`message` is scrubbed) and due again after `cooldownMs`; returns the new due time. */
  async coolDownAccount(
    account: string,
    cooldownMs: number,
    message: string,
    scheduled: boolean,
  ): Promise<Date | null> {
    return accounts.coolDownAccount(this.db, account, cooldownMs, this.db.redactor.scrub(message), scheduled);
  }

  /** Bring the accounts table in line with the configured names (see account-sync-queries.ts). */
  /** Of the named accounts, those still to adopt (never rotated nor adopted), with their last refusal. */
  async adoptionCandidates(names: string[]): Promise<Array<{ name: string; refusal: string | null }>> {
    return accounts.adoptionCandidates(this.db, names);
  }

  /** Record an adoption (next due time, active role) and its `account.adopted` event; false: no longer a candidate. */
  async adoptAccount(
    a: { name: string; lastChanged: Date | null; activeRole: string; nextDueAt: Date | null; actor: string },
    detail: Record<string, unknown>,
  ): Promise<boolean> {
    return accounts.adoptAccount(this.db, a, detail);
  }

  /** Record a refused adoption (redacted); the account is not due until its secret is fixed or it is rotated. */
  async refuseAdoption(name: string, reason: string, actor: string): Promise<void> {
    await accounts.refuseAdoption(this.db, name, this.db.redactor.scrub(reason), actor);
  }

  async syncAccountRows(
    names: string[],
    keys: string[],
    plan: (changed: ChangedAccount[]) => PlannedAccount[],
  ): Promise<{ retired: number }> {
    return syncAccountRows(this.db, names, keys, plan);
  }

  /** The facts that decide whether a request still needs its own rotation. */
  async requestStanding(account: string, req: RequestFacts): Promise<RequestStanding | null> {
    return rotations.requestStanding(this.db, account, req);
  }

  /** Did rotation `rotationId` do everything the request asked for? */
  async rotationSatisfies(account: string, req: RequestFacts, rotationId: string): Promise<boolean> {
    return rotations.rotationSatisfies(this.db, account, req, rotationId);
  }
}
