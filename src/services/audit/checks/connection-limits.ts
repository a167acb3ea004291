import { quoteIdent } from '../../../core/pg/quote.js';
import { type AuditContext, type RoleRow, setting } from '../audit-context.js';

/** Step 7: application logins that can take every connection slot. */
export async function checkConnectionLimits(ctx: AuditContext, roles: RoleRow[]): Promise<void> {
  const max = await setting(ctx.client, 'max_connections');
  for (const r of roles) {
    if (!r.rolcanlogin || !ctx.managed.has(r.rolname) || r.rolconnlimit >= 0) continue;
    ctx.findings.push({
      check: 'connection-limit',
      severity: 'low',
      subject: r.rolname,
      message: `application login has no CONNECTION LIMIT: a leaked credential or a runaway client can take all max_connections = ${max} slots`,
      fix: `ALTER ROLE ${quoteIdent(r.rolname)} CONNECTION LIMIT <its pool size plus headroom>`,
    });
  }
}
