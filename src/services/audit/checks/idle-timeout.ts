import { type AuditContext, setting } from '../audit-context.js';

/** Sessions idle inside a transaction hold locks and connections forever without a timeout. */
export async function checkIdleTimeout(ctx: AuditContext): Promise<void> {
  const v = await setting(ctx.client, 'idle_in_transaction_session_timeout');
  if (v === '0') {
    ctx.findings.push({
      check: 'idle-timeout',
      severity: 'low',
      subject: 'idle_in_transaction_session_timeout',
      message:
        'idle_in_transaction_session_timeout is 0: a session can sit idle in a transaction forever, holding locks and a connection',
      fix: `ALTER SYSTEM SET idle_in_transaction_session_timeout = '5min'; SELECT pg_reload_conf();`,
    });
  }
}
