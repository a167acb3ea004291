import { randomUUID } from 'node:crypto';
import { FenceLostError } from '../../../src/core/errors.js';
import type { Completion, NewRotation, RotationFence } from '../../../src/core/state/rotation-fence.js';
import type { RotationRecord, Step } from '../../../src/core/state/rotation-record.js';
import type { NewAuditEvent, StateStore } from '../../../src/core/state/state-store.js';

// In-memory stand-ins for the state store's fence (what RotationEngine uses of the state
// database): rotation records, per-account outcome and the audit trail live in plain arrays, and
// every fence call is logged so a test can assert which steps were advanced, in which order.
// The semantics follow src/core/state/rotation-fence.ts: advance/succeed on a rotation that is no
// longer running lose the fence; resume counts an attempt and ORs terminateSessions in.

/** What the engine uses of StateStore. */
export type FenceStore = Pick<StateStore, 'tryAcquireFence' | 'recordRefusal'>;

/** The outcome fields the real fence writes to the accounts table. */
export interface AccountOutcome {
  activeRole: string | null;
  lastStatus: 'succeeded' | 'failed' | null;
  lastError: string | null;
  consecutiveFailures: number;
  oldCredentialExpiresAt: Date | null;
  nextDueAt: Date | null;
  warnings: string[];
}

/** Rotation records, account outcomes and audit events of one fake state database. */
export class InMemoryState implements FenceStore {
  readonly rotations: RotationRecord[] = [];
  readonly audits: NewAuditEvent[] = [];
  readonly accounts = new Map<string, AccountOutcome>();
  /** Every fence and store call, e.g. `acquire`, `create`, `advance:staged`, `succeed`, `release`. */
  readonly calls: string[] = [];
  /** Accounts whose fence another (imaginary) process holds. */
  readonly heldElsewhere = new Set<string>();
  /** Make `advance` to this step lose the fence (as a dropped state connection would). */
  loseFenceAt: Step | null = null;
  private readonly held = new Set<string>();

  /** An unfinished rotation as a crashed process would have left it at `step`. */
  seedRunning(
    fields: Partial<RotationRecord> & Pick<RotationRecord, 'account' | 'step' | 'targetRole'>,
  ): RotationRecord {
    const now = new Date();
    const record: RotationRecord = {
      id: randomUUID(),
      strategy: 'single-user',
      status: 'running',
      previousRole: null,
      reason: null,
      requestedBy: null,
      terminateSessions: false,
      attempts: 1,
      startedAt: now,
      updatedAt: now,
      finishedAt: null,
      appliedAt: null,
      oldCredentialExpiresAt: null,
      sessionsEnded: null,
      error: null,
      ...fields,
    };
    this.rotations.push(record);
    return record;
  }

  /** The fence calls only (without acquire/release), e.g. ['create', 'advance:staged', ...]. */
  steps(): string[] {
    return this.calls.filter((c) => c !== 'acquire' && c !== 'release');
  }

  /** Audit event kinds, in order. */
  auditKinds(): string[] {
    return this.audits.map((e) => e.kind);
  }

  /** The rotation record with this id. */
  rotation(id: string | null): RotationRecord | undefined {
    return this.rotations.find((r) => r.id === id);
  }

  async tryAcquireFence(account: string): Promise<RotationFence | null> {
    this.calls.push('acquire');
    if (this.heldElsewhere.has(account) || this.held.has(account)) return null;
    this.held.add(account);
    // Like the real fence, the unfinished rotation comes with the lock (one round trip).
    const running = this.rotations.find((x) => x.account === account && x.status === 'running');
    // The engine only calls the fence's public methods; InMemoryFence has all of them.
    return new InMemoryFence(this, account, running ? { ...running } : null) as unknown as RotationFence;
  }

  async recordRefusal(
    account: { name: string; target: string; strategy: string },
    error: string,
    actor: string | null,
  ): Promise<void> {
    this.calls.push('recordRefusal');
    this.markFailed(account.name, error);
    this.audits.push({ account: account.name, kind: 'rotation.refused', actor, detail: { error } });
  }

  /** Account outcome, created on first use. */
  account(name: string): AccountOutcome {
    let a = this.accounts.get(name);
    if (!a) {
      a = {
        activeRole: null,
        lastStatus: null,
        lastError: null,
        consecutiveFailures: 0,
        oldCredentialExpiresAt: null,
        nextDueAt: null,
        warnings: [],
      };
      this.accounts.set(name, a);
    }
    return a;
  }

  markFailed(name: string, error: string): void {
    const a = this.account(name);
    a.lastStatus = 'failed';
    a.lastError = error;
    a.consecutiveFailures += 1;
  }

  unhold(account: string): void {
    this.held.delete(account);
  }
}

/** The fence of one account over InMemoryState; mirrors RotationFence's public methods. */
export class InMemoryFence implements Pick<RotationFence, keyof RotationFence> {
  private released = false;
  /** Steps passed without a write; their audit events go with the next write, as in the real fence. */
  private passedSteps: { step: Step; at: Date }[] = [];

  constructor(
    private readonly state: InMemoryState,
    readonly account: string,
    readonly runningAtAcquire: RotationRecord | null = null,
  ) {}

  passed(step: Step, at: Date = new Date()): void {
    this.passedSteps.push({ step, at });
  }

  async running(): Promise<RotationRecord | null> {
    this.check();
    const r = this.state.rotations.find((x) => x.account === this.account && x.status === 'running');
    return r ? { ...r } : null;
  }

  async create(r: NewRotation): Promise<RotationRecord> {
    this.log('create');
    const record = this.state.seedRunning({ ...r, step: 'created', attempts: 1 });
    this.state.account(r.account);
    this.state.audits.push({
      account: r.account,
      rotationId: r.id,
      kind: 'rotation.started',
      actor: r.requestedBy,
      detail: { reason: r.reason, role: r.targetRole },
    });
    return { ...record };
  }

  async resume(
    rotation: RotationRecord,
    actor: string | null,
    terminateSessions = false,
  ): Promise<RotationRecord | null> {
    this.log('resume');
    const found = this.state.rotation(rotation.id);
    if (!found || found.status !== 'running') return null;
    const r = found;
    r.attempts += 1;
    r.error = null;
    r.terminateSessions = r.terminateSessions || terminateSessions;
    this.state.audits.push({
      account: this.account,
      rotationId: r.id,
      kind: 'rotation.resumed',
      actor,
      detail: { step: rotation.step, ...(terminateSessions ? { terminateSessions } : {}) },
    });
    return { ...r };
  }

  async advance(
    rotationId: string,
    step: Step,
    facts: { appliedAt?: Date; oldCredentialExpiresAt?: Date | null } = {},
  ): Promise<void> {
    this.log(`advance:${step}`);
    this.flushPassed(rotationId);
    if (this.state.loseFenceAt === step)
      throw new FenceLostError(`lost the state-database connection holding the fence of account ${this.account}`, {
        account: this.account,
      });
    const r = this.live(rotationId);
    r.step = step;
    // COALESCE semantics: a fact once recorded is not cleared by a later advance.
    if (facts.appliedAt) r.appliedAt = facts.appliedAt;
    if (facts.oldCredentialExpiresAt) r.oldCredentialExpiresAt = facts.oldCredentialExpiresAt;
    this.state.audits.push({ account: this.account, rotationId, kind: `rotation.${step}` });
  }

  async succeed(rotation: RotationRecord, done: Completion): Promise<void> {
    this.log('succeed');
    if (this.state.loseFenceAt === 'recorded')
      throw new FenceLostError(`lost the state-database connection holding the fence of account ${this.account}`, {
        account: this.account,
      });
    const r = this.live(rotation.id);
    this.flushPassed(r.id);
    if (rotation.appliedAt) r.appliedAt = rotation.appliedAt;
    Object.assign(r, {
      status: 'succeeded',
      step: 'recorded',
      finishedAt: new Date(),
      oldCredentialExpiresAt: done.oldCredentialExpiresAt,
      sessionsEnded: done.sessionsEnded,
    });
    Object.assign(this.state.account(this.account), {
      activeRole: done.activeRole,
      lastStatus: 'succeeded',
      lastError: null,
      consecutiveFailures: 0,
      oldCredentialExpiresAt: done.oldCredentialExpiresAt,
      nextDueAt: done.nextDueAt,
      warnings: [...done.warnings],
    });
    this.state.audits.push({
      account: this.account,
      rotationId: r.id,
      kind: 'rotation.succeeded',
      actor: rotation.requestedBy,
      detail: { role: done.activeRole, sessionsEnded: done.sessionsEnded },
    });
  }

  async fail(rotation: RotationRecord, error: string): Promise<void> {
    this.log('fail');
    this.flushPassed(rotation.id);
    const r = this.state.rotation(rotation.id);
    if (r && r.status === 'running')
      Object.assign(r, { status: 'failed', step: rotation.step, finishedAt: new Date(), error });
    this.state.markFailed(this.account, error);
    this.state.audits.push({
      account: this.account,
      rotationId: rotation.id,
      kind: 'rotation.failed',
      actor: rotation.requestedBy,
      detail: { error, step: rotation.step },
    });
  }

  async noteError(rotation: RotationRecord, error: string): Promise<void> {
    this.log('noteError');
    this.flushPassed(rotation.id);
    const r = this.state.rotation(rotation.id);
    if (r && r.status === 'running') r.error = error;
    this.state.markFailed(this.account, error);
    this.state.audits.push({
      account: this.account,
      rotationId: rotation.id,
      kind: 'rotation.interrupted',
      actor: rotation.requestedBy,
      detail: { error, step: rotation.step },
    });
  }

  async audit(event: NewAuditEvent): Promise<void> {
    this.check();
    if (event.rotationId) this.flushPassed(event.rotationId);
    this.state.audits.push(event);
  }

  private flushPassed(rotationId: string): void {
    for (const p of this.passedSteps)
      this.state.audits.push({ account: this.account, rotationId, kind: `rotation.${p.step}` });
    this.passedSteps = [];
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.state.calls.push('release');
    this.state.unhold(this.account);
  }

  private log(call: string): void {
    this.check();
    this.state.calls.push(call);
  }

  /** Like the real fence: a released fence cannot write. */
  private check(): void {
    if (this.released)
      throw new FenceLostError(`fence of account ${this.account} was released`, { account: this.account });
  }

  /** The running record, or FenceLostError as the real fence gives when no row was updated. */
  private live(id: string): RotationRecord {
    const r = this.state.rotation(id);
    if (!r || r.status !== 'running')
      throw new FenceLostError(`rotation ${id} of account ${this.account} is no longer running`, {
        account: this.account,
      });
    return r;
  }
}
