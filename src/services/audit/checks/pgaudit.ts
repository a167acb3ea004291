import { type AuditContext, preloaded, setting } from '../audit-context.js';

/** Step 5: sensitive tables whose reads and writes no audit log records. */
export async function checkPgaudit(ctx: AuditContext): Promise<void> {
  const tables = ctx.config.targets[ctx.target]?.sensitiveTables ?? [];
  if (tables.length === 0) return;
  if (preloaded(await setting(ctx.client, 'shared_preload_libraries')).includes('pgaudit')) return;
  ctx.findings.push({
    check: 'pgaudit',
    severity: 'medium',
    subject: 'shared_preload_libraries',
    message: `pgaudit is not loaded although ${tables.length} sensitive table(s) are configured: who read or changed them is not recorded`,
    fix: `add pgaudit to shared_preload_libraries (restart), CREATE EXTENSION pgaudit, and set pgaudit.log = 'read, write' with pgaudit.log_parameter = off`,
  });
}
