import { type AuditContext, type RoleRow } from '../audit-context.js';

/** Login roles whose password never expires and that nothing rotates. */
export function checkPasswordExpiry(ctx: AuditContext, roles: RoleRow[]): void {
  for (const r of roles) {
    if (!r.rolcanlogin || r.rolvaliduntil !== null || ctx.managed.has(r.rolname)) continue;
    // Without a stored password there is nothing to expire (certificate or peer logins).
    if (ctx.withPassword && !ctx.withPassword.has(r.rolname)) continue;
    ctx.findings.push({
      check: 'password-expiry',
      severity: 'medium',
      subject: r.rolname,
      message:
        'login role has no password expiry (VALID UNTIL) and is not rotated by pgrotate: a leaked password works forever',
      fix: `manage it with pgrotate, or ALTER ROLE ${r.rolname} VALID UNTIL '<date>'`,
    });
  }
}
