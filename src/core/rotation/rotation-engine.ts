import { randomUUID } from 'node:crypto';
import type { AccountConfig } from '../config/config-schema.js';
import { FenceLostError, PgrotateError, RotationInProgressError, messageOf } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { RotationFence } from '../state/rotation-fence.js';
import type { RotationRecord } from '../state/rotation-record.js';
import { accountError } from './account-error.js';
import { failpoint } from './failpoint.js';
import type { RotateOptions } from './rotate-options.js';
import type { Completed, Plan, RotationContext } from './rotation-context.js';
import type { RotationEngineDeps } from './rotation-deps.js';
import { RotationIo } from './rotation-io.js';
import { preflight } from './rotation-preflight.js';
import { newRotationResult, type RotationResult } from './rotation-result.js';
import { apply, promote, promotedEarlier, record, stage, verify } from './rotation-steps.js';
import { strategyFor } from './strategies/strategy-for.js';

// The engine's public shapes live in their own files; importers keep reading them from here.
export type { RotateOptions, SkipRotation } from './rotate-options.js';
export type { RotationEngineDeps } from './rotation-deps.js';
export { newRotationResult, type RotationOutcome, type RotationResult } from './rotation-result.js';

/**
 * Runs the five-step protocol (stage, apply, verify, promote, record) for one account. Each step
 * is recorded in the state database before the next begins, and each is idempotent, so a
 * rotation interrupted anywhere is finished by the next attempt from its recorded step.
 */
export class RotationEngine {
  private readonly io: RotationIo;

  constructor(private readonly deps: RotationEngineDeps) {
    this.io = new RotationIo(deps);
  }

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

  /** One attempt under the account's fence: busy, skipped, a dry run, or the steps run to the end (or a failure). */
  private async rotateOnce(account: AccountConfig, opts: RotateOptions): Promise<RotationResult> {
    const result = newRotationResult(account.name, account.target);
    const log = this.deps.log.child({ account: account.name, target: account.target });
    let fence: RotationFence | null = null;
    try {
      fence = await this.deps.state.tryAcquireFence(account.name);
      if (!fence) {
        result.outcome = 'busy';
        const message = `account ${account.name}: a rotation is already in progress in another process`;
        result.error = accountError(RotationInProgressError, account, message);
        return result;
      }
      const skip = await opts.afterFence?.();
      if (skip) {
        const { reason: detail, rotationId, sessionsEnded } = skip;
        return Object.assign(result, { outcome: 'skipped', detail, rotationId, sessionsEnded });
      }
      const ctx = await this.begin(account, fence, opts, result, log);
      if (ctx) this.finish(ctx, await this.run(ctx), result, log);
      return result;
    } catch (err) {
      await this.failed(err, account, opts, fence, result, log);
      return result;
    } finally {
      await fence?.release();
    }
  }

  /**
   * The rotation to run: the unfinished one resumed, or a new one once pre-flight passed. Null
   * for a dry run, whose result is then complete.
   */
  private async begin(
    account: AccountConfig,
    fence: RotationFence,
    opts: RotateOptions,
    result: RotationResult,
    log: Logger,
  ): Promise<RotationContext | null> {
    const provider = this.deps.provider(account.provider);
    const strategy = strategyFor(account);
    let rotation = fence.runningAtAcquire;
    if (rotation && opts.dryRun) {
      // A dry run changes nothing, and resuming would: say what a real run would do.
      Object.assign(result, { outcome: 'dry-run', rotationId: rotation.id, role: rotation.targetRole });
      result.warnings.push(
        `rotation ${rotation.id} is unfinished at step ${rotation.step}; a run without --dry-run resumes it`,
      );
      return null;
    }
    // null: its holder finished it just before our lock (the read came with the lock).
    if (rotation) rotation = await fence.resume(rotation, opts.requestedBy ?? null, opts.terminateSessions ?? false);
    let plan: Plan | null = null;
    if (rotation) {
      result.resumed = true;
      log.info({ rotationId: rotation.id, step: rotation.step }, 'resuming unfinished rotation');
    } else {
      plan = await preflight(this.io, { account, strategy, provider, opts });
      Object.assign(result, { role: plan.targetRole, warnings: plan.warnings });
      if (opts.dryRun) {
        result.outcome = 'dry-run';
        return null;
      }
      rotation = await this.create(account, fence, plan, opts, log);
    }
    Object.assign(result, { rotationId: rotation.id, role: rotation.targetRole });
    const ctx: RotationContext = {
      account,
      strategy,
      provider,
      fence,
      rotation,
      opts: { ...opts, terminateSessions: opts.terminateSessions || rotation.terminateSessions },
      sessionsActor: opts.terminateSessions ? (opts.requestedBy ?? rotation.requestedBy) : rotation.requestedBy,
      warnings: result.warnings,
    };
    if (plan && plan.roleValidUntil !== undefined) ctx.roleValidUntil = plan.roleValidUntil;
    if (plan) Object.assign(ctx, { kept: plan.kept, current: plan.current });
    return ctx;
  }

  /** A new rotation record, as pre-flight planned it. */
  private async create(
    account: AccountConfig,
    fence: RotationFence,
    plan: Plan,
    opts: RotateOptions,
    log: Logger,
  ): Promise<RotationRecord> {
    const rotation = await fence.create({
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
    return rotation;
  }

  /**
   * The steps from wherever the record stands. Only `staged` is written on its own: apply, verify
   * and promote are idempotent, so they are reported to the fence (`passed`) and written with the
   * final record (or the failure), and nothing but the verify login stands between ALTER ROLE and
   * the promote. A resume from `staged` redoes them: apply sets the pending value's verifier again,
   * or, when an earlier attempt already promoted it, verify proves the current value instead.
   */
  private async run(ctx: RotationContext): Promise<Completed> {
    const { account, fence, rotation } = ctx;
    const env = this.deps.env;
    for (;;) {
      switch (rotation.step) {
        case 'created':
          await stage(this.io, ctx);
          await failpoint('after-stage', account.name, env);
          await fence.advance(rotation.id, 'staged');
          rotation.step = 'staged';
          break;
        case 'staged': {
          const appliedAt = await apply(this.io, ctx);
          if (appliedAt === null) {
            // No pending value of this rotation: promoted by an attempt that died before its
            // record (verify proves the current value), or gone before it was applied (stage anew).
            rotation.step = (await promotedEarlier(this.io, ctx)) ? 'applied' : 'created';
            break;
          }
          await failpoint('after-apply', account.name, env);
          fence.passed('applied', appliedAt);
          rotation.step = 'applied';
          rotation.appliedAt = appliedAt;
          break;
        }
        case 'applied':
          await verify(this.io, ctx);
          await failpoint('after-verify', account.name, env);
          fence.passed('verified');
          rotation.step = 'verified';
          break;
        case 'verified':
          await promote(this.io, ctx);
          await failpoint('after-promote', account.name, env);
          fence.passed('promoted');
          rotation.step = 'promoted';
          break;
        case 'promoted':
        case 'recorded':
          // A record written by an older version may already hold the expiry; else decide it now.
          rotation.oldCredentialExpiresAt ??= ctx.strategy.oldCredentialExpiry(rotation, !!ctx.opts.terminateSessions);
          return record(this.io, ctx);
      }
    }
  }

  /** A finished run into the result: succeeded, or failed when the sessions asked to end could not be. */
  private finish(ctx: RotationContext, done: Completed, result: RotationResult, log: Logger): void {
    const { account, rotation } = ctx;
    const { sessionsError, ...facts } = done;
    Object.assign(result, facts, { outcome: 'succeeded' });
    log.info({ rotationId: rotation.id, oldCredentialExpiresAt: done.oldCredentialExpiresAt }, 'rotation succeeded');
    if (sessionsError === null) return;
    result.outcome = 'failed';
    result.error = accountError(
      PgrotateError,
      account,
      `account ${account.name}: the password was rotated, but sessions on target ${account.target} could not be ended: ${sessionsError}`,
    );
    log.error({ rotationId: rotation.id, error: result.error.message }, 'sessions not ended');
  }

  /** A failed attempt into the result, and into the state (a refusal, or the running rotation's error). */
  private async failed(
    err: unknown,
    account: AccountConfig,
    opts: RotateOptions,
    fence: RotationFence | null,
    result: RotationResult,
    log: Logger,
  ): Promise<void> {
    const error = this.io.asPgrotateError(err, account);
    result.error = error;
    log.error({ rotationId: result.rotationId, error: error.message, kind: error.name }, 'rotation failed');
    if (!fence || err instanceof FenceLostError) return;
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
}
