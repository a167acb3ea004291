import type { App } from '../../core/app.js';
import { messageOf } from '../../core/errors.js';
import { setValidUntil } from '../../core/pg/role-admin.js';
import type { AccountInGrace } from '../../core/state/previous-role-usage-store.js';

// Ending an alternating account's previous login before its grace period is over
// (`expireWhenUnused`). Under the account's rotation fence, and only while the rotation that made
// the role previous is still the account's last: a rotation running now is about to give that
// very role the new password, and an expiry landing after its apply would lock applications out.

/** What happened, as the hooks that follow an expiry see it (e.g. PgBouncer closing pooled connections). */
export interface PreviousRoleExpired {
  account: string;
  target: string;
  role: string;
  rotationId: string;
  /** The VALID UNTIL set (now). */
  at: Date;
  reason: 'unused';
}

/** Runs after a previous role was expired and recorded; a failing hook is logged, never undoes the expiry. */
export type PreviousRoleExpiredHook = (app: App, expired: PreviousRoleExpired) => Promise<void>;

/**
 * Expire `g`'s previous role now: VALID UNTIL now() on the target, then the recorded expiry, the
 * usage row and a `credential.expired-unused` audit event (one state statement), then `hooks`.
 * Returns false (and changes nothing) when the account is busy or was rotated since `g` was read.
 */
export async function expirePreviousRole(
  app: App,
  g: AccountInGrace,
  detail: Record<string, unknown>,
  hooks: readonly PreviousRoleExpiredHook[] = [],
): Promise<boolean> {
  const fence = await app.state.tryAcquireFence(g.account);
  if (!fence) return false;
  let expired: PreviousRoleExpired;
  try {
    if (fence.runningAtAcquire) return false;
    const state = await app.state.getAccount(g.account);
    if (state?.lastRotationId !== g.rotationId || state.activeRole === g.role) return false;
    const at = new Date();
    await app.targets.withAdmin(g.target, g.account, (c) => setValidUntil(c, g.role, at));
    const recorded = await app.state.previousRoleUsage.recordEarlyExpiry(g.account, g.rotationId, at, {
      kind: 'credential.expired-unused',
      detail: { role: g.role, validUntil: at.toISOString(), gracePeriodEnd: g.expiresAt.toISOString(), ...detail },
    });
    if (!recorded) return false;
    expired = { account: g.account, target: g.target, role: g.role, rotationId: g.rotationId, at, reason: 'unused' };
  } finally {
    await fence.release();
  }
  for (const hook of hooks) {
    try {
      await hook(app, expired);
    } catch (err) {
      app.log.warn(
        { account: g.account, role: g.role, error: app.redactor.scrub(messageOf(err)) },
        'a hook after the expiry of a previous role failed',
      );
    }
  }
  return true;
}
