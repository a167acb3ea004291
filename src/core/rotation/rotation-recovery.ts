import type { ClientBase } from 'pg';
import { accountRoles, selfAdministered } from '../config/config-schema.js';
import { ProviderError, VerifyFailedError, messageOf } from '../errors.js';
import { clearPassword, setOwnPasswordVerifier, setPasswordVerifier } from '../pg/role-admin.js';
import type { SecretValue } from '../provider/secret-provider.js';
import { scramVerifier } from '../scram/scram-verifier.js';
import { publishVerifier } from '../pgbouncer/pgbouncer-sync.js';
import { accountError } from './account-error.js';
import { forAccount } from './pgbouncer-step.js';
import { adminNeededOnce, withRoleChanger } from './role-changer.js';
import type { RotationContext } from './rotation-context.js';
import type { RotationIo } from './rotation-io.js';

// Recovery from what an earlier attempt left behind or a failed verify leaves: a stale pending
// value of another rotation, a pending value gone missing, and the rollback of an unproven
// password. Each leaves the provider holding a password that logs in (I1).

/**
 * A pending value from another (failed or abandoned) rotation. One that PostgreSQL refuses is
 * debris and is discarded. One that still logs in is a live password, so it is never just
 * dropped (I1): a leftover of a promote is discarded; on an alternating pair, a stale value of
 * the role applications do not read has that role's password removed first; otherwise it is the
 * only working password of the role applications read, and is promoted, the login just made
 * being its proof. The rotation then goes on from a consistent store.
 */
export async function clearStalePending(io: RotationIo, ctx: RotationContext, stale: SecretValue): Promise<void> {
  const { account, provider } = ctx;
  io.deps.redactor.add(stale.password);
  const login = await io.deps.targets.tryLogin(account.target, stale.username, stale.password);
  if (!login.ok && !login.authFailure) {
    throw accountError(
      VerifyFailedError,
      account,
      `account ${account.name}: cannot tell whether the stale pending credential logs in to target ${account.target}: ${login.message}`,
    );
  }
  if (login.ok) {
    const current = await io.readCurrent(account, provider);
    if (current !== null && current.rotationId === stale.rotationId && current.password === stale.password) {
      // Already current: a promote that did not remove its pending copy.
    } else if (!accountRoles(account).includes(stale.username)) {
      throw accountError(
        ProviderError,
        account,
        `account ${account.name}: the provider holds a pending credential of rotation ${stale.rotationId ?? '(unknown)'} for role ${JSON.stringify(stale.username)}, which this account does not manage, and it still logs in to target ${account.target}; refusing to discard it. Remove it by hand after checking which password applications use.`,
        { secret: account.secret },
      );
    } else if (current !== null && ctx.strategy.isInactive(stale.username, current)) {
      await clearInactiveStale(io, ctx, stale);
    } else {
      return promoteStale(io, ctx, stale);
    }
  }
  await io.providerCall(account, 'discard a stale pending value of', () =>
    provider.discardPending(account.secret, stale.rotationId ?? ''),
  );
  await staleAudit(ctx, 'rotation.stale-pending-discarded', stale, false);
}

/** A stale value that logs in as the role applications do not read: that role's password is removed. */
async function clearInactiveStale(io: RotationIo, ctx: RotationContext, stale: SecretValue): Promise<void> {
  const { account } = ctx;
  await io.deps.targets.withAdmin(account.target, account.name, (client) => clearPassword(client, stale.username));
  await staleAudit(ctx, 'rotation.stale-pending-cleared', stale, true);
  ctx.warnings.push(
    `the pending credential of failed rotation ${stale.rotationId ?? '(unknown)'} still logged in as role ${JSON.stringify(stale.username)}, which applications do not read; its password was removed`,
  );
}

/** A stale value that is the only working password of the role applications read: it becomes current. */
async function promoteStale(io: RotationIo, ctx: RotationContext, stale: SecretValue): Promise<void> {
  const { account, provider } = ctx;
  await io.providerCall(account, 'promote the stale pending value of', () =>
    provider.promotePending(account.secret, stale.rotationId ?? ''),
  );
  await staleAudit(ctx, 'rotation.stale-pending-promoted', stale, true);
  ctx.warnings.push(
    `the pending credential of failed rotation ${stale.rotationId ?? '(unknown)'} was the only password role ${JSON.stringify(stale.username)} logged in with; it was promoted before this rotation`,
  );
}

/** The audit event of what was done with a stale pending value (`withRole`: the event names its role). */
function staleAudit(ctx: RotationContext, kind: string, stale: SecretValue, withRole: boolean): Promise<void> {
  const detail: Record<string, unknown> = { staleRotationId: stale.rotationId ?? null };
  if (withRole) detail.role = stale.username;
  return ctx.fence.audit({ account: ctx.account.name, rotationId: ctx.rotation.id, kind, detail });
}

/**
 * The rotation's pending value is gone and was never promoted: a rollback cut short after it
 * discarded the value (a crash, or the state database restarting before the failure was
 * written), or a person removed it. Nothing can be resumed, and waiting would stop the account
 * for good: on an alternating pair whose current value is the other role, the password nobody
 * holds is removed from the inactive role; then the rotation is marked failed, so the next one
 * starts afresh (a single-user rotation's ALTER ROLE replaces whatever the role has now).
 */
export async function abandonLostPending(
  io: RotationIo,
  ctx: RotationContext,
  current: SecretValue | null,
): Promise<never> {
  const { account, rotation, fence } = ctx;
  const lost = `account ${account.name}: the pending credential of rotation ${rotation.id} is missing from provider ${account.provider}`;
  let what: string;
  if (current !== null && ctx.strategy.isInactive(rotation.targetRole, current)) {
    await io.deps.targets.withAdmin(account.target, account.name, (client) =>
      clearPassword(client, rotation.targetRole),
    );
    what = `the password of inactive role ${JSON.stringify(rotation.targetRole)} was removed; applications keep using role ${JSON.stringify(current.username)}`;
  } else if (current !== null) {
    io.deps.redactor.add(current.password);
    const login = await io.deps.targets.tryLogin(account.target, current.username, current.password);
    what = login.ok
      ? `the provider's current value logs in`
      : `the provider's current value does not log in (${login.message}); the next rotation sets a new password`;
  } else {
    what = 'the provider holds no current value; the next rotation sets a new password';
  }
  const message = `${lost}; ${what}; the rotation is marked failed and the next one starts afresh`;
  await fence.fail(rotation, message);
  throw accountError(VerifyFailedError, account, message);
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
export async function rollBack(io: RotationIo, ctx: RotationContext, reason: string, refused: boolean): Promise<never> {
  const { account, provider, rotation, fence } = ctx;
  const current = await io.readCurrent(account, provider);
  const previous = current !== null && ctx.strategy.restorable(current, rotation) ? current : null;
  const inactive = refused && current !== null && ctx.strategy.isInactive(rotation.targetRole, current);
  if (!previous && !inactive) {
    if (!refused) throw accountError(VerifyFailedError, account, `${reason}; the rotation stays resumable`);
    const message = `${reason}; the pending credential is kept in the provider`;
    await fence.fail(rotation, message);
    throw accountError(VerifyFailedError, account, message);
  }
  await undoApply(io, ctx, reason, previous);
  await io.providerCall(account, 'discard the pending value of', () =>
    provider.discardPending(account.secret, rotation.id),
  );
  const message = previous
    ? `${reason}; the previous credential was restored`
    : `${reason}; the new password was removed from inactive role ${JSON.stringify(rotation.targetRole)} (applications keep using role ${JSON.stringify(current?.username)})`;
  await fence.fail(rotation, message);
  throw accountError(VerifyFailedError, account, message);
}

/** Put the previous credential back on the role, or (none: an inactive role) remove the new password. */
async function undoApply(io: RotationIo, ctx: RotationContext, reason: string, previous: SecretValue | null) {
  const { account, rotation } = ctx;
  let restore: (client: ClientBase) => Promise<void>;
  const self = selfAdministered(account);
  let verifier: string | null = null;
  if (previous) {
    io.deps.redactor.add(previous.password);
    const restored = await scramVerifier(previous.password, io.deps.defaults.scramIterations);
    verifier = restored;
    restore = self
      ? (client) => setOwnPasswordVerifier(client, restored)
      : (client) => setPasswordVerifier(client, rotation.targetRole, restored);
  } else {
    restore = (client) => clearPassword(client, rotation.targetRole);
  }
  // admin: self: the role logs in with the password it has now: the new one if apply took (a
  // verify that failed for a fault), else the previous one (then restoring it changes nothing).
  const passwords = self ? [await pendingPassword(io, ctx), previous?.password] : [];
  const refused = (why: string) =>
    `admin: self could log in as role ${JSON.stringify(rotation.targetRole)} with neither the new nor the previous credential (${why}). ${adminNeededOnce(account, rotation.targetRole)}`;
  try {
    await withRoleChanger(io, account, passwords, refused, restore);
    if (previous) io.followOwnLogin(account, rotation.targetRole, previous.password);
    // PgBouncer's line follows: the restored verifier, or (a password removed) no line.
    await forAccount(account, () =>
      publishVerifier(io.deps.targets, io.deps.redactor, account.target, rotation.targetRole, verifier),
    );
  } catch (err) {
    // The admin connection is gone: the pending value stays in the provider (I1) and the next
    // attempt resumes at verify.
    const what = previous
      ? 'the previous credential could not be restored'
      : `the new password could not be removed from inactive role ${JSON.stringify(rotation.targetRole)}`;
    throw accountError(
      VerifyFailedError,
      account,
      `${reason}; ${what} (${io.deps.redactor.scrub(messageOf(err))}); the rotation stays resumable`,
      { cause: err },
    );
  }
}

/** This rotation's pending password (the one this attempt staged, else the provider's), or undefined. */
async function pendingPassword(io: RotationIo, ctx: RotationContext): Promise<string | undefined> {
  if (ctx.staged?.rotationId === ctx.rotation.id) return ctx.staged.password;
  const pending = await io.readPending(ctx.account, ctx.provider);
  if (pending?.rotationId !== ctx.rotation.id) return undefined;
  io.deps.redactor.add(pending.password);
  return pending.password;
}
