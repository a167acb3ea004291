import { randomUUID } from 'node:crypto';
import { accountRoles, type AccountConfig, type PasswordPolicyConfig, type Schedule } from '../config/config-schema.js';
import {
  AdminPrivilegeError,
  FenceLostError,
  LoginPathClosedError,
  PgrotateError,
  ProviderError,
  RoleCannotLoginError,
  RoleExpiredError,
  RoleNotFoundError,
  RotationInProgressError,
  SuperuserRefusedError,
  TargetUnreachableError,
  VerifyFailedError,
  messageOf,
} from '../errors.js';
import type { ClientBase } from 'pg';
import type { Logger } from '../logging/logger.js';
import type { Redactor } from '../logging/redactor.js';
import { generatePassword } from '../password/password-generator.js';
import {
  adminCannotAlterAny,
  clearPassword,
  inspectRoleAccess,
  roleValidUntil,
  setPasswordVerifier,
  setValidUntil,
  terminateSessions,
  type RoleInfo,
} from '../pg/role-admin.js';
import { quoteIdent } from '../pg/quote.js';
import type { LoginPathProbe, LoginResult, TargetConnector } from '../pg/target-connector.js';
import { scramVerifier } from '../scram/scram-verifier.js';
import { nextDueAfter } from '../schedule/next-due.js';
import type { RotationFence } from '../state/rotation-fence.js';
import type { RotationRecord } from '../state/rotation-record.js';
import type { StateStore } from '../state/state-store.js';
import { PendingConflictError } from '../provider/pending-conflict-error.js';
import type { KeptSecretKeys, RotatedSecretValue, SecretProvider, SecretValue } from '../provider/secret-provider.js';
import { failpoint } from './failpoint.js';
import { keptSecretKeys } from './kept-secret-keys.js';

export interface RotateOptions {
  reason?: string | undefined;
  /** Who asked (a person, `scheduler`, an API token name). */
  requestedBy?: string | undefined;
  /** End the role's other sessions once the new password is live; alternating roles expire at once. */
  terminateSessions?: boolean | undefined;
  /** Check everything a rotation would need, change nothing. */
  dryRun?: boolean | undefined;
  /**
   * Runs right after the fence is taken, before anything else: an answer skips the rotation
   * (a queued request that a later rotation already did). Under the fence, so a job delivered
   * twice cannot rotate twice.
   */
  afterFence?: (() => Promise<SkipRotation | null>) | undefined;
}

/** Why a rotation is not needed, and the rotation that already did the work, if any. */
export interface SkipRotation {
  reason: string;
  rotationId: string | null;
  sessionsEnded: number | null;
}

export type RotationOutcome = 'succeeded' | 'failed' | 'dry-run' | 'busy' | 'skipped';

export interface RotationResult {
  account: string;
  target: string;
  outcome: RotationOutcome;
  rotationId: string | null;
  role: string | null;
  oldCredentialExpiresAt: Date | null;
  nextDueAt: Date | null;
  sessionsEnded: number | null;
  resumed: boolean;
  error: PgrotateError | null;
  /** Facts a person should act on although the rotation succeeded. */
  warnings: string[];
  /** Why nothing was done (a skipped rotation), else null. */
  detail: string | null;
}

/** A result with nothing done yet (outcome failed until something else is known). */
export function newRotationResult(account: string, target: string): RotationResult {
  return {
    account,
    target,
    outcome: 'failed',
    rotationId: null,
    role: null,
    oldCredentialExpiresAt: null,
    nextDueAt: null,
    sessionsEnded: null,
    resumed: false,
    error: null,
    warnings: [],
    detail: null,
  };
}

export interface RotationEngineDeps {
  state: StateStore;
  targets: TargetConnector;
  provider: (name: string) => SecretProvider;
  redactor: Redactor;
  log: Logger;
  defaults: { schedule: Schedule; password: PasswordPolicyConfig; scramIterations: number; verifyAttempts: number };
  env?: NodeJS.ProcessEnv;
  /** Delay between verify attempts; tests shorten it. */
  verifyBackoffMs?: number;
  /**
   * pgrotate's own login that this account's secret holds (the state or an admin login), or
   * null. Told each password the moment PostgreSQL starts accepting it, so this process's next
   * connection as that login uses it.
   */
  ownLogin?: (account: AccountConfig) => { readonly username: string; set(password: string): void } | null;
  /** Told every result with its wall-clock duration (metrics, alerts); must not throw or block. */
  onResult?: (result: RotationResult, durationMs: number) => void;
}

/** What a finished run reports; `sessionsError` when the rotation succeeded but sessions could not be ended. */
type Completed = Pick<RotationResult, 'oldCredentialExpiresAt' | 'nextDueAt' | 'sessionsEnded'> & {
  sessionsError: string | null;
};

interface Ctx {
  account: AccountConfig;
  provider: SecretProvider;
  fence: RotationFence;
  rotation: RotationRecord;
  opts: RotateOptions;
  /** The pending value this process staged; a resumed rotation reads it from the provider instead. */
  staged?: SecretValue;
  /** The single-user role's VALID UNTIL as pre-flight read it; undefined when not read (a resumed rotation). */
  roleValidUntil?: Date | null;
  /** The current secret's keys pgrotate does not own, as pre-flight read them (null: none); undefined when not read. */
  kept?: KeptSecretKeys | null;
  /** Who asked for the sessions to end: this attempt's requester when it asked, else the rotation's. */
  sessionsActor: string | null;
  warnings: string[];
}

/** What pre-flight decided and learned. */
interface Plan {
  targetRole: string;
  previousRole: string | null;
  roleValidUntil?: Date | null;
  /** The keys the new value keeps from the current secret; null when it has none. */
  kept: KeptSecretKeys | null;
  warnings: string[];
}

/**
 * Runs the five-step protocol (stage, apply, verify, promote, record) for one account. Each step
 * is recorded in the state database before the next begins, and each is idempotent, so a
 * rotation interrupted anywhere is finished by the next attempt from its recorded step.
 */
export class RotationEngine {
  constructor(private readonly deps: RotationEngineDeps) {}

  /** Rotate one account now (or resume its unfinished rotation). Never throws for rotation failures. */
  async rotate(account: AccountConfig, opts: RotateOptions = {}): Promise<RotationResult> {
    // One redaction scope per rotation: the passwords it handles are forgotten once its result
    // (already scrubbed) has been reported, so the process does not hoard past plaintexts.
    return this.deps.redactor.scoped(() => this.rotateAndReport(account, opts));
  }

  private async rotateAndReport(account: AccountConfig, opts: RotateOptions): Promise<RotationResult> {
    const started = performance.now();
    const result = await this.rotateOnce(account, opts);
    try {
      this.deps.onResult?.(result, performance.now() - started);
    } catch (err) {
      // An observer's bug must not turn a finished rotation into a failure.
      this.deps.log.warn({ error: this.deps.redactor.scrub(messageOf(err)) }, 'rotation observer failed');
    }
    return result;
  }

  private async rotateOnce(account: AccountConfig, opts: RotateOptions): Promise<RotationResult> {
    const result = newRotationResult(account.name, account.target);
    const log = this.deps.log.child({ account: account.name, target: account.target });
    let fence: RotationFence | null = null;
    try {
      fence = await this.deps.state.tryAcquireFence(account.name);
      if (!fence) {
        result.outcome = 'busy';
        result.error = new RotationInProgressError(
          `account ${account.name}: a rotation is already in progress in another process`,
          {
            account: account.name,
            target: account.target,
          },
        );
        return result;
      }
      const skip = await opts.afterFence?.();
      if (skip) {
        Object.assign(result, {
          outcome: 'skipped',
          detail: skip.reason,
          rotationId: skip.rotationId,
          sessionsEnded: skip.sessionsEnded,
        });
        return result;
      }
      const provider = this.deps.provider(account.provider);
      let rotation = fence.runningAtAcquire;
      let plan: Plan | null = null;
      if (rotation && opts.dryRun) {
        // A dry run changes nothing, and resuming would: say what a real run would do.
        result.outcome = 'dry-run';
        result.rotationId = rotation.id;
        result.role = rotation.targetRole;
        result.warnings.push(
          `rotation ${rotation.id} is unfinished at step ${rotation.step}; a run without --dry-run resumes it`,
        );
        return result;
      }
      if (rotation) {
        // null: its holder finished it just before our lock (the read came with the lock).
        rotation = await fence.resume(rotation, opts.requestedBy ?? null, opts.terminateSessions ?? false);
      }
      if (rotation) {
        result.resumed = true;
        log.info({ rotationId: rotation.id, step: rotation.step }, 'resuming unfinished rotation');
      } else {
        plan = await this.preflight(account, provider, opts);
        result.role = plan.targetRole;
        result.warnings = plan.warnings;
        if (opts.dryRun) {
          result.outcome = 'dry-run';
          return result;
        }
        rotation = await fence.create({
          id: randomUUID(),
          account: account.name,
          target: account.target,
          strategy: account.strategy,
          targetRole: plan.targetRole,
          previousRole: plan.previousRole,
          reason: opts.reason ?? null,
          requestedBy: opts.requestedBy ?? null,
          terminateSessions: opts.terminateSessions ?? false,
        });
        log.info({ rotationId: rotation.id, role: plan.targetRole, reason: opts.reason }, 'rotation started');
      }
      result.rotationId = rotation.id;
      result.role = rotation.targetRole;
      const ctx: Ctx = {
        account,
        provider,
        fence,
        rotation,
        opts: { ...opts, terminateSessions: opts.terminateSessions || rotation.terminateSessions },
        sessionsActor: opts.terminateSessions ? (opts.requestedBy ?? rotation.requestedBy) : rotation.requestedBy,
        warnings: result.warnings,
      };
      if (plan && plan.roleValidUntil !== undefined) ctx.roleValidUntil = plan.roleValidUntil;
      if (plan) ctx.kept = plan.kept;
      const done = await this.run(ctx);
      const { sessionsError, ...facts } = done;
      Object.assign(result, facts, { outcome: 'succeeded' });
      log.info({ rotationId: rotation.id, oldCredentialExpiresAt: done.oldCredentialExpiresAt }, 'rotation succeeded');
      if (sessionsError !== null) {
        result.outcome = 'failed';
        result.error = new PgrotateError(
          `account ${account.name}: the password was rotated, but sessions on target ${account.target} could not be ended: ${sessionsError}`,
          {
            account: account.name,
            target: account.target,
          },
        );
        log.error({ rotationId: rotation.id, error: result.error.message }, 'sessions not ended');
      }
      return result;
    } catch (err) {
      const error = this.asPgrotateError(err, account);
      result.error = error;
      log.error({ rotationId: result.rotationId, error: error.message, kind: error.name }, 'rotation failed');
      if (fence && !(err instanceof FenceLostError)) {
        try {
          if (result.rotationId === null) {
            await this.deps.state.recordRefusal(account, error.message, opts.requestedBy ?? null);
          } else {
            const running = await fence.running();
            if (running) await fence.noteError(running, error.message);
          }
        } catch (recordErr) {
          log.warn({ error: this.deps.redactor.scrub(messageOf(recordErr)) }, 'could not record the failure');
        }
      }
      return result;
    } finally {
      await fence?.release();
    }
  }

  /** Checks made before anything changes: the role(s), the admin login, the provider. */
  private async preflight(account: AccountConfig, provider: SecretProvider, opts: RotateOptions): Promise<Plan> {
    const roles = accountRoles(account);
    // The catalogue, the provider and (for a single role) the login path are asked at once; their
    // answers are judged in the same order as before, so the first problem reported is the same.
    const inspection = this.deps.targets.withAdmin(account.target, account.name, (client) =>
      inspectRoleAccess(client, roles),
    );
    const currentRead = settledLater(
      this.providerCall(account, 'read the current value of', () => provider.getCurrent(account.secret)),
    );
    // A single role's probe starts now, with the current value still being read: it may reuse a
    // probe of the same role from moments ago, which is checked below once the value is known.
    const probeFor = (role: string, reuse: boolean) =>
      settledLater(this.deps.targets.probeLoginPath(account.target, role, { reuse }));
    const singleProbe = account.strategy === 'single-user' ? probeFor(account.role, true) : null;
    const access = await inspection;
    const own = this.deps.ownLogin?.(account) ?? null;
    if (opts.terminateSessions && (own || roles.includes(access.admin.name))) {
      throw new AdminPrivilegeError(
        `account ${account.name}: --terminate-sessions would end pgrotate's own sessions (the role is its ${own ? 'state or admin' : 'admin'} login on target ${account.target}); rotate it without --terminate-sessions`,
        { account: account.name, target: account.target },
      );
    }
    if (opts.terminateSessions && !access.admin.canSignal) {
      // Found out now, not after the new password is live and the sessions still run.
      throw new AdminPrivilegeError(
        `account ${account.name}: --terminate-sessions needs the admin login ${access.admin.name} on target ${account.target} to end other roles' sessions: GRANT pg_signal_backend TO ${quoteIdent(access.admin.name)}`,
        { account: account.name, target: account.target },
      );
    }
    for (const role of roles) {
      const info = access.roles.get(role);
      if (!info) {
        throw new RoleNotFoundError(
          `account ${account.name}: role ${JSON.stringify(role)} does not exist on target ${account.target}`,
          {
            account: account.name,
            target: account.target,
          },
        );
      }
      if (info.superuser && !account.allowSuperuser) {
        throw new SuperuserRefusedError(
          `account ${account.name}: role ${JSON.stringify(role)} on target ${account.target} is a superuser; set allowSuperuser: true on the account to rotate it`,
          { account: account.name, target: account.target },
        );
      }
      if (!info.canLogin) {
        throw new RoleCannotLoginError(
          `account ${account.name}: role ${JSON.stringify(role)} on target ${account.target} is NOLOGIN; a password on it would be useless`,
          {
            account: account.name,
            target: account.target,
          },
        );
      }
    }
    // Every role the admin may not alter, in one error (a pair missing ADMIN OPTION on both roles
    // would otherwise take two runs to fix). Any role may change its own password (pgrotate
    // rotating its admin login). Each role exists here: the loop above refused a missing one.
    const others = roles
      .filter((r) => r !== access.admin.name)
      .map((r) => access.roles.get(r) as RoleInfo & { adminOption: boolean | null });
    const denied = adminCannotAlterAny(access.admin, others, account.target);
    if (denied) {
      throw new AdminPrivilegeError(`account ${account.name}: ${denied}`, {
        account: account.name,
        target: account.target,
      });
    }
    const warnings: string[] = [];
    let roleValidUntil: Date | null | undefined;
    if (account.strategy === 'single-user') {
      // The alternating strategy sets the inactive role's expiry itself; a single role's is the user's.
      const info = access.roles.get(account.role) as RoleInfo;
      roleValidUntil = info.validUntil;
      this.checkExpiry(account, info);
      const limitNote = connectionLimitNote(info);
      if (limitNote) warnings.push(limitNote);
    }
    const current = await currentRead;
    this.deps.redactor.add(current?.password);
    // Refused now, before anything changes, when a kept key would carry the old password on.
    const kept = this.keptKeys(account, current);
    let plan: Plan;
    if (account.strategy === 'single-user') {
      plan = { targetRole: account.role, previousRole: current ? account.role : null, roleValidUntil, kept, warnings };
    } else {
      const active = current && account.roles.includes(current.username) ? current.username : null;
      plan = {
        targetRole: active === account.roles[0] ? account.roles[1] : account.roles[0],
        previousRole: active,
        kept,
        warnings,
      };
    }
    // An earlier probe's answer may serve only a rotation whose refused verify the rollback undoes
    // (a previous credential to restore, or an inactive role applications do not use). A first
    // rotation has nothing to restore, so it probes afresh: that is what the probe protects.
    const undoable =
      account.strategy === 'single-user' ? current?.username === account.role : plan.previousRole !== null;
    let probing = singleProbe ?? probeFor(plan.targetRole, undoable);
    if (!undoable && (await probing).reused) probing = probeFor(plan.targetRole, false);
    await this.checkLoginPath(account, plan.targetRole, probing);
    return plan;
  }

  /** An expired single-user role is refused unless the account renews VALID UNTIL with the password. */
  private checkExpiry(account: AccountConfig, info: RoleInfo): void {
    if (!info.validUntil || account.renewValidUntil !== undefined) return;
    if (info.validUntil.getTime() > Date.now()) return;
    throw new RoleExpiredError(
      `account ${account.name}: role ${JSON.stringify(info.name)} on target ${account.target} expired at ${info.validUntil.toISOString()} (VALID UNTIL), so PostgreSQL refuses every password for it and a new one could not be verified. ` +
        `Extend it (ALTER ROLE ${quoteIdent(info.name)} VALID UNTIL 'infinity'), or set renewValidUntil on the account so each rotation sets a new expiry with the new password`,
      { account: account.name, target: account.target },
    );
  }

  /**
   * Prove before anything changes that a login as the role can reach a password check from
   * here, so verify can succeed; otherwise a first rotation would replace the password only the
   * applications knew with one nobody can prove.
   */
  private async checkLoginPath(account: AccountConfig, role: string, probing: Promise<LoginPathProbe>): Promise<void> {
    const probe = await probing;
    if (probe.open) return;
    const where = `role ${JSON.stringify(role)} on target ${account.target}`;
    if (probe.reason === 'fault') {
      throw new TargetUnreachableError(
        `account ${account.name}: cannot probe the login path of ${where}: ${probe.message}`,
        { account: account.name, target: account.target },
      );
    }
    const cause =
      probe.reason === 'host-refused'
        ? `pg_hba.conf refuses a password login as ${where} from pgrotate's host (${probe.message})`
        : `pg_hba.conf lets ${where} log in from pgrotate's host without a password (trust), so a verify login from here could not prove the new password`;
    throw new LoginPathClosedError(
      `account ${account.name}: ${cause}. Nothing was changed. Fix: add a pg_hba.conf line that checks a password (scram-sha-256) for this role from the host pgrotate runs on, then reload (SELECT pg_reload_conf())`,
      { account: account.name, target: account.target },
    );
  }

  /**
   * The steps from wherever the record stands. Only `staged` is written on its own: apply, verify
   * and promote are idempotent, so they are reported to the fence (`passed`) and written with the
   * final record (or the failure), and nothing but the verify login stands between ALTER ROLE and
   * the promote. A resume from `staged` redoes them: apply sets the pending value's verifier again,
   * or, when an earlier attempt already promoted it, verify proves the current value instead.
   */
  private async run(ctx: Ctx): Promise<Completed> {
    const { account, fence } = ctx;
    for (;;) {
      switch (ctx.rotation.step) {
        case 'created':
          await this.stage(ctx);
          await failpoint('after-stage', account.name, this.deps.env);
          await fence.advance(ctx.rotation.id, 'staged');
          ctx.rotation.step = 'staged';
          break;
        case 'staged': {
          const appliedAt = await this.apply(ctx);
          if (appliedAt === null) {
            // No pending value of this rotation: promoted by an attempt that died before its
            // record (verify proves the current value), or gone before it was applied (stage anew).
            ctx.rotation.step = (await this.promotedEarlier(ctx)) ? 'applied' : 'created';
            break;
          }
          await failpoint('after-apply', account.name, this.deps.env);
          fence.passed('applied', appliedAt);
          ctx.rotation.step = 'applied';
          ctx.rotation.appliedAt = appliedAt;
          break;
        }
        case 'applied':
          await this.verify(ctx);
          await failpoint('after-verify', account.name, this.deps.env);
          fence.passed('verified');
          ctx.rotation.step = 'verified';
          break;
        case 'verified': {
          await this.providerCall(account, 'promote the pending value of', () =>
            ctx.provider.promotePending(account.secret, ctx.rotation.id, ctx.staged),
          );
          await failpoint('after-promote', account.name, this.deps.env);
          fence.passed('promoted');
          ctx.rotation.step = 'promoted';
          break;
        }
        case 'promoted':
        case 'recorded':
          // A record written by an older version may already hold the expiry; else decide it now.
          ctx.rotation.oldCredentialExpiresAt ??= this.oldCredentialExpiry(ctx);
          return this.record(ctx);
      }
    }
  }

  /** Is the provider's current value already this rotation's (promoted by an attempt that died)? */
  private async promotedEarlier(ctx: Ctx): Promise<boolean> {
    const { account, provider, rotation } = ctx;
    const current = await this.providerCall(account, 'read the current value of', () =>
      provider.getCurrent(account.secret),
    );
    this.deps.redactor.add(current?.password);
    if (current?.rotationId === rotation.id) return true;
    // Staged anew next: the value it keeps keys from is the one just read.
    ctx.kept = this.keptKeys(account, current);
    return false;
  }

  /**
   * Step 1: a new password, stored as pending in the provider. PostgreSQL is untouched. A pending
   * value of another rotation comes back as a PendingConflictError carrying it: it is dealt with
   * (clearStalePending) and the new value staged again; the common case costs one provider call.
   */
  private async stage(ctx: Ctx): Promise<void> {
    const { account, provider, rotation } = ctx;
    const endpoint = this.deps.targets.endpoint(account.target);
    const value: RotatedSecretValue = {
      username: rotation.targetRole,
      password: generatePassword(account.password ?? this.deps.defaults.password),
      host: this.deps.targets.publicHost(account.target),
      port: endpoint.port,
      dbname: endpoint.database,
      engine: 'postgres',
      rotatedAt: new Date().toISOString(),
      rotationId: rotation.id,
    };
    // Stores with their own expiry metadata (Azure's expiresOn) keep it in step with the schedule.
    const nextDue = nextDueAfter(account.schedule ?? this.deps.defaults.schedule, new Date(), account.name);
    if (nextDue) value.nextDueAt = nextDue.toISOString();
    this.deps.redactor.add(value.password);
    // The pending value carries the kept keys, so the promote (maybe by a resumed attempt) keeps
    // them. A resumed rotation did not run pre-flight: it reads the current value for them.
    const kept = ctx.kept !== undefined ? ctx.kept : await this.readKeptKeys(ctx);
    if (kept) value.extra = kept;
    const stageOnce = () =>
      this.providerCall(account, 'stage a pending value in', () => provider.stagePending(account.secret, value));
    let staged: SecretValue;
    try {
      staged = await stageOnce();
    } catch (err) {
      const conflict = err instanceof ProviderError ? err.cause : undefined;
      if (!(conflict instanceof PendingConflictError)) throw err;
      await this.clearStalePending(ctx, conflict.existing);
      staged = await stageOnce();
    }
    this.deps.redactor.add(staged.password);
    ctx.staged = staged;
  }

  /** The current value's kept keys, read for a rotation that is resumed before its stage. */
  private async readKeptKeys(ctx: Ctx): Promise<KeptSecretKeys | null> {
    const { account, provider } = ctx;
    const current = await this.providerCall(account, 'read the current value of', () =>
      provider.getCurrent(account.secret),
    );
    this.deps.redactor.add(current?.password);
    return this.keptKeys(account, current);
  }

  /** The keys pgrotate does not own in `current`, refused when one holds its password (kept-secret-keys.ts). */
  private keptKeys(account: AccountConfig, current: SecretValue | null): KeptSecretKeys | null {
    const where = { account: account.name, target: account.target, provider: account.provider, secret: account.secret };
    return keptSecretKeys(current, where) ?? null;
  }

  /**
   * A pending value from another (failed or abandoned) rotation. One that PostgreSQL refuses is
   * debris and is discarded. One that still logs in is a live password, so it is never just
   * dropped (I1): a leftover of a promote is discarded; on an alternating pair, a stale value of
   * the role applications do not read has that role's password removed first; otherwise it is the
   * only working password of the role applications read, and is promoted, the login just made
   * being its proof. The rotation then goes on from a consistent store.
   */
  private async clearStalePending(ctx: Ctx, stale: SecretValue): Promise<void> {
    const { account, provider } = ctx;
    this.deps.redactor.add(stale.password);
    const staleId = stale.rotationId ?? '';
    const login = await this.deps.targets.tryLogin(account.target, stale.username, stale.password);
    if (!login.ok && !login.authFailure) {
      throw new VerifyFailedError(
        `account ${account.name}: cannot tell whether the stale pending credential logs in to target ${account.target}: ${login.message}`,
        {
          account: account.name,
          target: account.target,
        },
      );
    }
    const detail = { staleRotationId: stale.rotationId ?? null };
    if (login.ok) {
      const current = await this.providerCall(account, 'read the current value of', () =>
        provider.getCurrent(account.secret),
      );
      if (current !== null && current.rotationId === stale.rotationId && current.password === stale.password) {
        // Already current: a promote that did not remove its pending copy.
      } else if (!accountRoles(account).includes(stale.username)) {
        throw new ProviderError(
          `account ${account.name}: the provider holds a pending credential of rotation ${stale.rotationId ?? '(unknown)'} for role ${JSON.stringify(stale.username)}, which this account does not manage, and it still logs in to target ${account.target}; refusing to discard it. Remove it by hand after checking which password applications use.`,
          { account: account.name, target: account.target, secret: account.secret },
        );
      } else if (account.strategy === 'alternating' && current !== null && current.username !== stale.username) {
        await this.deps.targets.withAdmin(account.target, account.name, (client) =>
          clearPassword(client, stale.username),
        );
        await ctx.fence.audit({
          account: account.name,
          rotationId: ctx.rotation.id,
          kind: 'rotation.stale-pending-cleared',
          detail: { ...detail, role: stale.username },
        });
        ctx.warnings.push(
          `the pending credential of failed rotation ${stale.rotationId ?? '(unknown)'} still logged in as role ${JSON.stringify(stale.username)}, which applications do not read; its password was removed`,
        );
      } else {
        await this.providerCall(account, 'promote the stale pending value of', () =>
          provider.promotePending(account.secret, staleId),
        );
        await ctx.fence.audit({
          account: account.name,
          rotationId: ctx.rotation.id,
          kind: 'rotation.stale-pending-promoted',
          detail: { ...detail, role: stale.username },
        });
        ctx.warnings.push(
          `the pending credential of failed rotation ${stale.rotationId ?? '(unknown)'} was the only password role ${JSON.stringify(stale.username)} logged in with; it was promoted before this rotation`,
        );
        return;
      }
    }
    await this.providerCall(account, 'discard a stale pending value of', () =>
      provider.discardPending(account.secret, staleId),
    );
    await ctx.fence.audit({
      account: account.name,
      rotationId: ctx.rotation.id,
      kind: 'rotation.stale-pending-discarded',
      detail,
    });
  }

  /** Step 2: the SCRAM verifier of the pending password goes to PostgreSQL; the plaintext never does. */
  private async apply(ctx: Ctx): Promise<Date | null> {
    const { account, provider, rotation } = ctx;
    const pending =
      ctx.staged ??
      (await this.providerCall(account, 'read the pending value of', () => provider.getPending(account.secret)));
    if (!pending || pending.rotationId !== rotation.id) return null;
    this.deps.redactor.add(pending.password);
    // A resumed rotation read it back: verify uses the value just applied, without a second read.
    ctx.staged = pending;
    const verifier = await scramVerifier(pending.password, this.deps.defaults.scramIterations);
    // The inactive role of an alternating pair may carry an old expiry; the new password must not.
    // renewValidUntil sets the expiry in the same statement, so password and expiry never diverge.
    const validUntil =
      account.renewValidUntil !== undefined
        ? new Date(Date.now() + account.renewValidUntil)
        : account.strategy === 'alternating'
          ? 'infinity'
          : undefined;
    await this.deps.targets.withAdmin(account.target, account.name, (client) =>
      setPasswordVerifier(client, rotation.targetRole, verifier, validUntil),
    );
    this.followOwnLogin(account, rotation.targetRole, pending.password);
    return new Date();
  }

  /** Step 3: log in with the pending password as an application would. */
  private async verify(ctx: Ctx): Promise<void> {
    const { account, provider, rotation } = ctx;
    const pending =
      ctx.staged ??
      (await this.providerCall(account, 'read the pending value of', () => provider.getPending(account.secret)));
    if (!pending || pending.rotationId !== rotation.id) {
      // Already promoted by an attempt that crashed before recording it.
      const current = await this.providerCall(account, 'read the current value of', () =>
        provider.getCurrent(account.secret),
      );
      if (current?.rotationId === rotation.id) return this.verifyLogin(ctx, current);
      return this.abandonLostPending(ctx, current);
    }
    return this.verifyLogin(ctx, pending);
  }

  /**
   * The rotation's pending value is gone and was never promoted: a rollback cut short after it
   * discarded the value (a crash, or the state database restarting before the failure was
   * written), or a person removed it. Nothing can be resumed, and waiting would stop the account
   * for good: on an alternating pair whose current value is the other role, the password nobody
   * holds is removed from the inactive role; then the rotation is marked failed, so the next one
   * starts afresh (a single-user rotation's ALTER ROLE replaces whatever the role has now).
   */
  private async abandonLostPending(ctx: Ctx, current: SecretValue | null): Promise<never> {
    const { account, rotation, fence } = ctx;
    const lost = `account ${account.name}: the pending credential of rotation ${rotation.id} is missing from provider ${account.provider}`;
    let what: string;
    if (account.strategy === 'alternating' && current !== null && current.username !== rotation.targetRole) {
      await this.deps.targets.withAdmin(account.target, account.name, (client) =>
        clearPassword(client, rotation.targetRole),
      );
      what = `the password of inactive role ${JSON.stringify(rotation.targetRole)} was removed; applications keep using role ${JSON.stringify(current.username)}`;
    } else if (current !== null) {
      this.deps.redactor.add(current.password);
      const login = await this.deps.targets.tryLogin(account.target, current.username, current.password);
      what = login.ok
        ? `the provider's current value logs in`
        : `the provider's current value does not log in (${login.message}); the next rotation sets a new password`;
    } else {
      what = 'the provider holds no current value; the next rotation sets a new password';
    }
    const message = `${lost}; ${what}; the rotation is marked failed and the next one starts afresh`;
    await fence.fail(rotation, message);
    throw new VerifyFailedError(message, { account: account.name, target: account.target });
  }

  private async verifyLogin(ctx: Ctx, value: SecretValue): Promise<void> {
    const { account, rotation } = ctx;
    this.deps.redactor.add(value.password);
    const attempts = this.deps.defaults.verifyAttempts;
    let last: LoginResult = { ok: false, authFailure: false, refusal: 'fault', message: 'not attempted' };
    for (let i = 0; i < attempts; i++) {
      last = await this.deps.targets.tryLogin(account.target, rotation.targetRole, value.password);
      if (last.ok) {
        if (last.proof !== 'session') {
          ctx.warnings.push(
            `the server accepted the new password of role ${JSON.stringify(rotation.targetRole)} and then refused the session (${last.message}); new sessions are refused until one ends`,
          );
        }
        return;
      }
      if (i < attempts - 1) await new Promise((r) => setTimeout(r, (this.deps.verifyBackoffMs ?? 250) * 2 ** i));
    }
    const message = `account ${account.name}: the new credential of role ${JSON.stringify(rotation.targetRole)} did not log in to target ${account.target}: ${last.message}`;
    await this.rollBack(ctx, message, last.authFailure);
  }

  /**
   * The new password was not proven. A single-user account whose provider still holds the
   * previous credential gets that one back at once, whatever the failure, so what applications
   * read keeps logging in (I1). On an alternating pair whose current value is the other role, a
   * refusal removes the new password from the inactive role: applications never read it, and a
   * password nobody holds must not stay live. Only a lost admin connection leaves either case to
   * resume. With no previous credential (a first rotation) the pending value is the only copy of
   * the role's password and is kept (I1): a refusal fails the rotation (the next one promotes it
   * once it logs in), a fault leaves it resumable.
   */
  private async rollBack(ctx: Ctx, reason: string, refused: boolean): Promise<never> {
    const { account, provider, rotation, fence } = ctx;
    const current = await this.providerCall(account, 'read the current value of', () =>
      provider.getCurrent(account.secret),
    );
    const previousKnown =
      account.strategy === 'single-user' &&
      current !== null &&
      current.username === rotation.targetRole &&
      current.rotationId !== rotation.id;
    const inactiveRole =
      account.strategy === 'alternating' && refused && current !== null && current.username !== rotation.targetRole;
    if (!previousKnown && !inactiveRole) {
      if (!refused)
        throw new VerifyFailedError(`${reason}; the rotation stays resumable`, {
          account: account.name,
          target: account.target,
        });
      const message = `${reason}; the pending credential is kept in the provider`;
      await fence.fail(rotation, message);
      throw new VerifyFailedError(message, { account: account.name, target: account.target });
    }
    let restore: (client: ClientBase) => Promise<void>;
    if (previousKnown) {
      this.deps.redactor.add(current.password);
      const verifier = await scramVerifier(current.password, this.deps.defaults.scramIterations);
      restore = (client) => setPasswordVerifier(client, rotation.targetRole, verifier);
    } else {
      restore = (client) => clearPassword(client, rotation.targetRole);
    }
    try {
      await this.deps.targets.withAdmin(account.target, account.name, restore);
      if (previousKnown) this.followOwnLogin(account, rotation.targetRole, current.password);
    } catch (err) {
      // The admin connection is gone: the pending value stays in the provider (I1) and the next
      // attempt resumes at verify.
      const what = previousKnown
        ? 'the previous credential could not be restored'
        : `the new password could not be removed from inactive role ${JSON.stringify(rotation.targetRole)}`;
      throw new VerifyFailedError(
        `${reason}; ${what} (${this.deps.redactor.scrub(messageOf(err))}); the rotation stays resumable`,
        {
          account: account.name,
          target: account.target,
          cause: err,
        },
      );
    }
    await this.providerCall(account, 'discard the pending value of', () =>
      provider.discardPending(account.secret, rotation.id),
    );
    const message = previousKnown
      ? `${reason}; the previous credential was restored`
      : `${reason}; the new password was removed from inactive role ${JSON.stringify(rotation.targetRole)} (applications keep using role ${JSON.stringify(current?.username)})`;
    await fence.fail(rotation, message);
    throw new VerifyFailedError(message, { account: account.name, target: account.target });
  }

  /** PostgreSQL now accepts `password` for `role`; if that is one of pgrotate's own logins, use it from now on. */
  private followOwnLogin(account: AccountConfig, role: string, password: string): void {
    const own = this.deps.ownLogin?.(account);
    if (own && own.username === role) own.set(password);
  }

  private oldCredentialExpiry(ctx: Ctx): Date | null {
    const { account, rotation, opts } = ctx;
    if (account.strategy === 'single-user') return rotation.appliedAt ?? new Date();
    if (!rotation.previousRole) return null;
    return opts.terminateSessions ? new Date() : new Date(Date.now() + account.gracePeriod);
  }

  /** Step 5: expire the previous login (alternating), end sessions if asked, finish the record. */
  private async record(ctx: Ctx): Promise<Completed> {
    const { account, rotation, fence, opts } = ctx;
    const expiry = rotation.oldCredentialExpiresAt;
    let sessionsEnded: number | null = null;
    let sessionsError: string | null = null;
    const nextDueAt = nextDueAfter(account.schedule ?? this.deps.defaults.schedule, new Date(), account.name);
    await this.deps.targets.withAdmin(account.target, account.name, async (client) => {
      if (account.strategy === 'single-user' && account.renewValidUntil === undefined) {
        // Read again only when pre-flight did not (a resumed rotation).
        const validUntil =
          ctx.roleValidUntil !== undefined ? ctx.roleValidUntil : await roleValidUntil(client, account.role);
        if (validUntil && nextDueAt && validUntil.getTime() < nextDueAt.getTime()) {
          ctx.warnings.push(
            `role ${JSON.stringify(account.role)} has VALID UNTIL ${validUntil.toISOString()}, before the next due rotation at ${nextDueAt.toISOString()}: its password stops working then (extend it, or set renewValidUntil on the account)`,
          );
        }
      }
      if (
        account.strategy === 'single-user' &&
        account.renewValidUntil !== undefined &&
        ctx.roleValidUntil === undefined
      ) {
        // A resumed rotation: apply set VALID UNTIL to its time + renewValidUntil, and the role's
        // expiry belongs to pgrotate, but it may have been moved earlier while the rotation was
        // unfinished (the promoted password would then stop working): set it again.
        const validUntil = await roleValidUntil(client, account.role);
        const appliedAt = (rotation.appliedAt ?? new Date()).getTime();
        if (validUntil && validUntil.getTime() < appliedAt + account.renewValidUntil - 60_000) {
          const renewed = new Date(Date.now() + account.renewValidUntil);
          await setValidUntil(client, account.role, renewed);
          ctx.warnings.push(
            `role ${JSON.stringify(account.role)} had VALID UNTIL ${validUntil.toISOString()} when this unfinished rotation resumed; renewValidUntil set it to ${renewed.toISOString()}`,
          );
        }
      }
      if (account.strategy === 'alternating' && rotation.previousRole && expiry) {
        await setValidUntil(client, rotation.previousRole, expiry);
      }
      if (account.strategy === 'alternating' && !rotation.previousRole) {
        // Adopting a pair: the other role's password was never in the provider, so it must not
        // keep working (I1). It gets a managed password when its turn comes.
        const other = account.roles.find((r) => r !== rotation.targetRole) as string;
        await clearPassword(client, other);
      }
      if (opts.terminateSessions) {
        const roles = accountRoles(account);
        try {
          let ended = 0;
          for (const role of roles)
            ended += await terminateSessions(client, role, this.deps.targets.closingSessionsOf(account.target, role));
          sessionsEnded = ended;
        } catch (err) {
          // The new password is live: finish the rotation, and report the sessions as a failure.
          sessionsError = this.deps.redactor.scrub(messageOf(err));
        }
      }
    });
    if (sessionsEnded !== null) {
      await fence.audit({
        account: account.name,
        rotationId: rotation.id,
        kind: 'sessions.terminated',
        actor: ctx.sessionsActor,
        detail: { count: sessionsEnded },
      });
    }
    if (sessionsError !== null) {
      await fence.audit({
        account: account.name,
        rotationId: rotation.id,
        kind: 'sessions.terminate-failed',
        actor: ctx.sessionsActor,
        detail: { error: sessionsError },
      });
    }
    await fence.succeed(rotation, {
      activeRole: rotation.targetRole,
      oldCredentialExpiresAt: expiry,
      nextDueAt,
      sessionsEnded,
      warnings: ctx.warnings,
    });
    await failpoint('after-record', account.name, this.deps.env);
    return { oldCredentialExpiresAt: expiry, nextDueAt, sessionsEnded, sessionsError };
  }

  /** Run a provider operation; failures become ProviderErrors naming the account, secret, provider and target. */
  private async providerCall<T>(account: AccountConfig, what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const detail = this.deps.redactor.scrub(messageOf(err));
      throw new ProviderError(
        `account ${account.name}: could not ${what} secret ${account.secret} in provider ${account.provider}: ${detail} (target ${account.target})`,
        {
          account: account.name,
          target: account.target,
          secret: account.secret,
          cause: err,
        },
      );
    }
  }

  private asPgrotateError(err: unknown, account: AccountConfig): PgrotateError {
    if (err instanceof PgrotateError) {
      const msg = this.deps.redactor.scrub(err.message);
      if (msg !== err.message) err.message = msg;
      return err;
    }
    return new PgrotateError(
      `account ${account.name} (target ${account.target}): ${this.deps.redactor.scrub(messageOf(err))}`,
      {
        account: account.name,
        target: account.target,
        cause: err,
      },
    );
  }
}

/**
 * The same promise, marked as handled: it is awaited later, after other checks that may throw
 * first, and an early rejection must not count as unhandled meanwhile.
 */
function settledLater<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** A note when the role has no free session left: verify then rests on the server's answer. */
function connectionLimitNote(info: RoleInfo): string | null {
  if (info.connectionLimit < 0 || info.sessions < info.connectionLimit) return null;
  return `role ${JSON.stringify(info.name)} is at its CONNECTION LIMIT (${info.sessions} of ${info.connectionLimit} sessions); applications cannot open new sessions until one ends`;
}
