import type pg from 'pg';
import { FenceLostError, messageOf } from '../errors.js';
import type { StateTables } from './state-tables.js';
import { STATE_SQL } from './state-statements.js';
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

/** A step passed without a write of its own, recorded with the fence's next write. */
interface PassedStep {
  step: Step;
  at: Date;
}

/**
 * Exclusive right to advance one account's rotation (invariant I3). All writes go through the
 * connection that holds the advisory lock, so a process that lost the lock cannot write.
 *
 * Steps whose redo is idempotent (apply, verify, promote) are not written one by one: the
 * engine reports them with `passed`, and the fence writes their audit events, with the times
 * they happened, in the same statement as its next write (the final record, a failure or an
 * interruption). A process killed in between leaves the last durable step, and the resume
 * redoes the rest; nothing but the verify login stands between ALTER ROLE and the promote.
 */
export class RotationFence {
  private released = false;
  private passedSteps: PassedStep[] = [];

  /**
   * @param runningAtAcquire the unfinished rotation read in the statement that took the lock.
   * Its snapshot may predate the lock by a moment, so `resume` re-checks that it still runs.
   */
  constructor(
    private readonly store: StateTables,
    private readonly client: pg.PoolClient,
    readonly account: string,
    private readonly key: string,
    readonly runningAtAcquire: RotationRecord | null = null,
  ) {}

  /**
   * Take the account's advisory lock on `client` and, in the same round trip, read its unfinished
   * rotation; null (lock not taken) when another session holds it.
   */
  static async tryAcquire(store: StateTables, client: pg.PoolClient, account: string): Promise<RotationFence | null> {
    const key = `pgrotate:${store.schema}:${account}`;
    const res = await client.query<{ locked: boolean } & RotationRow>(STATE_SQL.tryFence, [key, account]);
    const row = res.rows[0];
    if (!row?.locked) return null;
    return new RotationFence(store, client, account, key, row.id ? rotationFromRow(row) : null);
  }

  /** Note a step passed now; its audit event is written with the fence's next write. */
  passed(step: Step, at: Date = new Date()): void {
    this.passedSteps.push({ step, at });
  }

  /** The unfinished rotation of this account, if a previous attempt left one. */
  async running(): Promise<RotationRecord | null> {
    const res = await this.q<RotationRow>(STATE_SQL.runningRotation, [this.account]);
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
    const res = await this.q<RotationRow>(STATE_SQL.createRotation, [
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
    ]);
    return rotationFromRow(res.rows[0] as RotationRow);
  }

  /**
   * Count another attempt at a rotation a previous process left unfinished. A resumer that asks
   * to end sessions (an offboarding) has the rest of the rotation do so, and the record says so.
   */
  async resume(
    rotation: RotationRecord,
    actor: string | null,
    terminateSessions = false,
  ): Promise<RotationRecord | null> {
    return this.tx(async () => {
      const res = await this.q<RotationRow>(STATE_SQL.resumeRotation, [rotation.id, terminateSessions]);
      // Finished by its holder between the read that came with the lock and now: nothing to resume.
      if (!res.rows[0]) return null;
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
    await this.flushPassed(rotationId);
    const res = await this.q(STATE_SQL.advanceRotation, [
      rotationId,
      step,
      facts.appliedAt ?? null,
      facts.oldCredentialExpiresAt ?? null,
      `rotation.${step}`,
    ]);
    if (res.rowCount !== 1)
      throw new FenceLostError(`rotation ${rotationId} of account ${this.account} is no longer running`, {
        account: this.account,
      });
  }

  /**
   * Finish successfully: the account's new state, the audit events of the steps passed since the
   * last write and the success event, in one atomic statement.
   */
  async succeed(rotation: RotationRecord, done: Completion): Promise<void> {
    const detail = this.store.redactor.scrubValue({
      role: done.activeRole,
      oldCredentialExpiresAt: done.oldCredentialExpiresAt?.toISOString() ?? null,
      nextDueAt: done.nextDueAt?.toISOString() ?? null,
      sessionsEnded: done.sessionsEnded,
      ...(done.warnings.length ? { warnings: done.warnings } : {}),
    });
    const passed = this.passedSteps;
    const res = await this.q<{ n: string }>(STATE_SQL.succeedRotation, [
      rotation.id,
      done.oldCredentialExpiresAt,
      done.sessionsEnded,
      this.account,
      done.activeRole,
      done.nextDueAt,
      rotation.requestedBy,
      JSON.stringify(detail),
      this.store.redactor.scrubValue(done.warnings),
      passed.map((p) => `rotation.${p.step}`),
      passed.map((p) => p.at),
      rotation.appliedAt,
    ]);
    if (Number(res.rows[0]?.n) !== 1)
      throw new FenceLostError(`rotation ${rotation.id} of account ${this.account} is no longer running`, {
        account: this.account,
      });
    this.passedSteps = [];
  }

  /**
   * Finish as failed (after a rollback, or when the rotation cannot go on). The record keeps the
   * furthest step the attempt reached, including steps passed without a write of their own.
   */
  async fail(rotation: RotationRecord, error: string): Promise<void> {
    const message = this.store.redactor.scrub(error);
    await this.tx(async () => {
      await this.flushPassed(rotation.id);
      await this.q(STATE_SQL.failRotation, [rotation.id, message, rotation.step, rotation.appliedAt]);
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
      await this.flushPassed(rotation.id);
      await this.q(STATE_SQL.noteRotationError, [rotation.id, message]);
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

  /** Append an audit event through the fenced connection (after those of the steps passed before it). */
  async audit(event: NewAuditEvent): Promise<void> {
    if (event.rotationId) await this.flushPassed(event.rotationId);
    await this.store.audit(event, this.client);
  }

  /** Write the audit events of the steps passed since the last write, with their times. */
  private async flushPassed(rotationId: string): Promise<void> {
    if (this.passedSteps.length === 0) return;
    const passed = this.passedSteps;
    await this.q(STATE_SQL.insertPassedSteps, [
      this.account,
      rotationId,
      passed.map((p) => `rotation.${p.step}`),
      passed.map((p) => p.at),
    ]);
    this.passedSteps = [];
  }

  /** Give up the fence; safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      await this.client.query(STATE_SQL.releaseFence, [this.key]);
      this.client.release();
    } catch (err) {
      // A broken connection has already dropped the lock with the session.
      this.client.release(err as Error);
    }
  }

  private async markAccountFailed(message: string): Promise<void> {
    await this.q(STATE_SQL.markAccountFailed, [this.account, message]);
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
