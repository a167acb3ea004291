import type pg from 'pg';
import { FenceLostError, messageOf } from '../errors.js';
import type { StateTables } from './state-tables.js';
import type { NewAuditEvent } from './state-types.js';
import { rotationFromRow, type RotationRecord, type RotationRow, type Step } from './rotation-record.js';

export interface NewRotation {
  id: string;
  account: string;
  target: string;
  strategy: 'single-user' | 'alternating';
  targetRole: string;
  previousRole: string | null;
  reason: string | null;
  requestedBy: string | null;
  terminateSessions: boolean;
}

export interface Completion {
  activeRole: string;
  oldCredentialExpiresAt: Date | null;
  nextDueAt: Date | null;
  sessionsEnded: number | null;
  /** Facts a person should act on although the rotation succeeded. */
  warnings: string[];
}

/**
 * Exclusive right to advance one account's rotation (invariant I3). All writes go through the
 * connection that holds the advisory lock, so a process that lost the lock cannot write.
 */
export class RotationFence {
  private released = false;

  constructor(
    private readonly store: StateTables,
    private readonly client: pg.PoolClient,
    readonly account: string,
    private readonly key: string,
  ) {}

  /** The unfinished rotation of this account, if a previous attempt left one. */
  async running(): Promise<RotationRecord | null> {
    const res = await this.q<RotationRow>(
      `SELECT * FROM ${this.store.s}.rotations WHERE account = $1 AND status = 'running'`,
      [this.account],
    );
    return res.rows[0] ? rotationFromRow(res.rows[0]) : null;
  }

  /** Start a rotation record and its audit event: one statement, so one round trip and atomic. */
  async create(r: NewRotation): Promise<RotationRecord> {
    const detail = this.store.redactor.scrubValue({
      reason: r.reason,
      role: r.targetRole,
      strategy: r.strategy,
      terminateSessions: r.terminateSessions,
    });
    const res = await this.q<RotationRow>(
      `WITH acc AS (
         INSERT INTO ${this.store.s}.accounts (name, target, strategy) VALUES ($2, $9, $3)
         ON CONFLICT (name) DO UPDATE SET target = EXCLUDED.target, strategy = EXCLUDED.strategy, updated_at = now()),
       ev AS (
         INSERT INTO ${this.store.s}.audit_events (account, rotation_id, kind, actor, detail) VALUES ($2, $1, 'rotation.started', $7, $10))
       INSERT INTO ${this.store.s}.rotations (id, account, strategy, status, step, target_role, previous_role, reason, requested_by, terminate_sessions)
       VALUES ($1, $2, $3, 'running', 'created', $4, $5, $6, $7, $8) RETURNING *`,
      [
        r.id,
        r.account,
        r.strategy,
        r.targetRole,
        r.previousRole,
        r.reason,
        r.requestedBy,
        r.terminateSessions,
        r.target,
        JSON.stringify(detail),
      ],
    );
    return rotationFromRow(res.rows[0] as RotationRow);
  }

  /**
   * Count another attempt at a rotation a previous process left unfinished. A resumer that asks
   * to end sessions (an offboarding) has the rest of the rotation do so, and the record says so.
   */
  async resume(rotation: RotationRecord, actor: string | null, terminateSessions = false): Promise<RotationRecord> {
    return this.tx(async () => {
      const res = await this.q<RotationRow>(
        `UPDATE ${this.store.s}.rotations SET attempts = attempts + 1, updated_at = clock_timestamp(), error = NULL,
           terminate_sessions = terminate_sessions OR $2
         WHERE id = $1 AND status = 'running' RETURNING *`,
        [rotation.id, terminateSessions],
      );
      await this.audit({
        account: this.account,
        rotationId: rotation.id,
        kind: 'rotation.resumed',
        actor,
        detail: { step: rotation.step, ...(terminateSessions ? { terminateSessions } : {}) },
      });
      return rotationFromRow(res.rows[0] as RotationRow);
    });
  }

  /** Record that `step` completed, with the facts it produced, and its audit event: one statement. */
  async advance(
    rotationId: string,
    step: Step,
    facts: { appliedAt?: Date; oldCredentialExpiresAt?: Date | null } = {},
  ): Promise<void> {
    const res = await this.q(
      `WITH advanced AS (
         UPDATE ${this.store.s}.rotations SET step = $2, updated_at = clock_timestamp(),
           applied_at = COALESCE($3, applied_at), old_credential_expires_at = COALESCE($4, old_credential_expires_at)
         WHERE id = $1 AND status = 'running' RETURNING id, account)
       INSERT INTO ${this.store.s}.audit_events (account, rotation_id, kind) SELECT account, id, $5 FROM advanced`,
      [rotationId, step, facts.appliedAt ?? null, facts.oldCredentialExpiresAt ?? null, `rotation.${step}`],
    );
    if (res.rowCount !== 1)
      throw new FenceLostError(`rotation ${rotationId} of account ${this.account} is no longer running`, {
        account: this.account,
      });
  }

  /** Finish successfully: the account's new state and the audit event, in one atomic statement. */
  async succeed(rotation: RotationRecord, done: Completion): Promise<void> {
    const detail = this.store.redactor.scrubValue({
      role: done.activeRole,
      oldCredentialExpiresAt: done.oldCredentialExpiresAt?.toISOString() ?? null,
      nextDueAt: done.nextDueAt?.toISOString() ?? null,
      sessionsEnded: done.sessionsEnded,
      ...(done.warnings.length ? { warnings: done.warnings } : {}),
    });
    const res = await this.q<{ n: string }>(
      `WITH finished AS (
         UPDATE ${this.store.s}.rotations SET status = 'succeeded', step = 'recorded', finished_at = clock_timestamp(),
           updated_at = clock_timestamp(), old_credential_expires_at = $2, sessions_ended = $3
         WHERE id = $1 AND status = 'running' RETURNING id),
       acc AS (
         UPDATE ${this.store.s}.accounts SET active_role = $5, last_rotation_id = $1, last_rotated_at = clock_timestamp(),
           old_credential_expires_at = $2, next_due_at = $6, last_status = 'succeeded', last_error = NULL,
           consecutive_failures = 0, warnings = $9, updated_at = now()
         WHERE name = $4 AND EXISTS (SELECT 1 FROM finished)),
       ev AS (
         INSERT INTO ${this.store.s}.audit_events (account, rotation_id, kind, actor, detail)
         SELECT $4, id, 'rotation.succeeded', $7, $8 FROM finished)
       SELECT count(*) AS n FROM finished`,
      [
        rotation.id,
        done.oldCredentialExpiresAt,
        done.sessionsEnded,
        this.account,
        done.activeRole,
        done.nextDueAt,
        rotation.requestedBy,
        JSON.stringify(detail),
        this.store.redactor.scrubValue(done.warnings),
      ],
    );
    if (Number(res.rows[0]?.n) !== 1)
      throw new FenceLostError(`rotation ${rotation.id} of account ${this.account} is no longer running`, {
        account: this.account,
      });
  }

  /** Finish as failed (after a rollback, or when the rotation cannot go on). */
  async fail(rotation: RotationRecord, error: string): Promise<void> {
    const message = this.store.redactor.scrub(error);
    await this.tx(async () => {
      await this.q(
        `UPDATE ${this.store.s}.rotations SET status = 'failed', finished_at = clock_timestamp(), updated_at = clock_timestamp(), error = $2
         WHERE id = $1 AND status = 'running'`,
        [rotation.id, message],
      );
      await this.markAccountFailed(message);
      await this.audit({
        account: this.account,
        rotationId: rotation.id,
        kind: 'rotation.failed',
        actor: rotation.requestedBy,
        detail: { error: message, step: rotation.step },
      });
    });
  }

  /** Note an error on a rotation that stays resumable (it keeps status running). */
  async noteError(rotation: RotationRecord, error: string): Promise<void> {
    const message = this.store.redactor.scrub(error);
    await this.tx(async () => {
      await this.q(
        `UPDATE ${this.store.s}.rotations SET error = $2, updated_at = clock_timestamp() WHERE id = $1 AND status = 'running'`,
        [rotation.id, message],
      );
      await this.markAccountFailed(message);
      await this.audit({
        account: this.account,
        rotationId: rotation.id,
        kind: 'rotation.interrupted',
        actor: rotation.requestedBy,
        detail: { error: message, step: rotation.step },
      });
    });
  }

  /** Append an audit event through the fenced connection. */
  async audit(event: NewAuditEvent): Promise<void> {
    await this.store.audit(event, this.client);
  }

  /** Give up the fence; safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      await this.client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [this.key]);
      this.client.release();
    } catch (err) {
      // A broken connection has already dropped the lock with the session.
      this.client.release(err as Error);
    }
  }

  private async markAccountFailed(message: string): Promise<void> {
    await this.q(
      `UPDATE ${this.store.s}.accounts SET last_status = 'failed', last_error = $2, consecutive_failures = consecutive_failures + 1, updated_at = now() WHERE name = $1`,
      [this.account, message],
    );
  }

  private async q<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    if (this.released)
      throw new FenceLostError(`fence of account ${this.account} was released`, { account: this.account });
    try {
      return await this.client.query<R>(text, values);
    } catch (err) {
      if (err instanceof FenceLostError) throw err;
      const code = (err as { code?: string }).code;
      // SQL errors from a live connection are bugs or constraint hits; a dead one means the lock is gone.
      if (code === undefined || code.startsWith('57P') || code.startsWith('08')) {
        throw new FenceLostError(
          `lost the state-database connection holding the fence of account ${this.account}: ${this.store.redactor.scrub(messageOf(err))}`,
          {
            account: this.account,
            cause: err,
          },
        );
      }
      throw err;
    }
  }

  private async tx<T>(fn: () => Promise<T>): Promise<T> {
    await this.q('BEGIN', []);
    try {
      const out = await fn();
      await this.q('COMMIT', []);
      return out;
    } catch (err) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }
}
