import { type AuditContext } from '../audit-context.js';

/** pgrotate's own admin and state logins on this target, when no account rotates them. */
export function checkOwnLogins(ctx: AuditContext): void {
  const target = ctx.config.targets[ctx.target];
  const own = new Map<string, string>();
  if (!ctx.managed.has(ctx.admin.role)) own.set(ctx.admin.role, 'admin');
  try {
    const u = new URL(ctx.config.state.url);
    const user = decodeURIComponent(u.username);
    const sameServer =
      target && decodeURIComponent(u.hostname) === target.host && (u.port ? Number(u.port) : 5432) === target.port;
    if (user && sameServer && !ctx.managed.has(user)) own.set(user, own.has(user) ? 'admin and state' : 'state');
  } catch {
    // An unparsable state URL is refused when the config is loaded.
  }
  for (const [role, what] of own) {
    ctx.findings.push({
      check: 'own-login',
      severity: 'medium',
      subject: role,
      message: `pgrotate's ${what} login is not rotated by any account: the most powerful credential pgrotate holds never changes`,
      fix: `add a single-user account for ${role} and read its password from a provider (see "Rotating pgrotate's own logins" in docs/security.md)`,
    });
  }
}
