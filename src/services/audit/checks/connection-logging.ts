import { type AuditContext, setting } from '../audit-context.js';

/** Step 5: logins and session ends that leave no line in the server log. */
export async function checkConnectionLogging(ctx: AuditContext): Promise<void> {
  for (const name of ['log_connections', 'log_disconnections']) {
    const v = (await setting(ctx.client, name)).trim().toLowerCase();
    // PostgreSQL 18 turned log_connections into a list; empty means off.
    if (!['off', 'false', '0', ''].includes(v)) continue;
    ctx.findings.push({
      check: 'connection-logging',
      severity: 'medium',
      subject: name,
      message: `${name} is off: a login with a leaked password, and when its session ended, leave no trace in the server log`,
      fix: `ALTER SYSTEM SET ${name} = on; SELECT pg_reload_conf();`,
    });
  }
}
