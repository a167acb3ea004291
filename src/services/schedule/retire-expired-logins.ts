import type { App } from '../../core/app.js';
import { messageOf } from '../../core/errors.js';
import { retirePgbouncerLogin } from '../../core/pgbouncer/pgbouncer-sync.js';

/**
 * Alternating accounts on targets with PgBouncer whose previous role's VALID UNTIL has passed:
 * PostgreSQL refuses new logins of that role, but PgBouncer would still let it in (its auth_file
 * line, or an auth_query that ignores valuntil, and the server connections it pools), so the
 * line goes and the pooled connections are closed (retirePgbouncerLogin). Accounts with a
 * rotation under way are left to the next call. A failure is logged and left to the next call;
 * it never stops the run. Returns the accounts retired.
 */
export async function retireExpiredPgbouncerLogins(
  app: App,
  now = new Date(),
  /** Per account, the rotation whose previous login this process already retired (a worker's ticks): skipped, so a retired login costs no RELOAD per tick; one entry per account. */
  done?: Map<string, string>,
): Promise<string[]> {
  const candidates = app.config.accounts.filter(
    (a) => a.strategy === 'alternating' && app.targets.pgbouncers(a.target).length > 0,
  );
  if (candidates.length === 0) return [];
  const running = await app.state.accountsWithRunningRotation();
  const retired: string[] = [];
  for (const account of candidates) {
    if (account.strategy !== 'alternating' || running.has(account.name)) continue;
    const st = await app.state.getAccount(account.name);
    const expiry = st?.oldCredentialExpiresAt ?? null;
    if (!st?.activeRole || !expiry || expiry > now) continue;
    const previous = account.roles.find((r) => r !== st.activeRole);
    if (!previous) continue;
    const key = `${st.lastRotationId ?? ''}:${expiry.getTime()}`;
    if (done?.get(account.name) === key) continue;
    try {
      const closed = await app.targets.withAdmin(account.target, account.name, (client) =>
        retirePgbouncerLogin(app.targets, app.redactor, account.target, previous, client),
      );
      retired.push(account.name);
      done?.set(account.name, key);
      if (closed > 0) {
        await app.state.audit({
          account: account.name,
          rotationId: st.lastRotationId,
          kind: 'pgbouncer.pooled-connections-closed',
          detail: { role: previous, count: closed },
        });
      }
    } catch (err) {
      app.log.warn(
        { account: account.name, error: app.redactor.scrub(messageOf(err)) },
        'could not retire the expired previous login from PgBouncer',
      );
    }
  }
  return retired;
}
