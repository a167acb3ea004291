import { type AuditContext, setting } from '../audit-context.js';

/** password_encryption must be scram-sha-256, or new passwords set by other tools are stored as MD5. */
export async function checkPasswordEncryption(ctx: AuditContext): Promise<void> {
  const v = await setting(ctx.client, 'password_encryption');
  if (v !== 'scram-sha-256') {
    ctx.findings.push({
      check: 'password-encryption',
      severity: 'high',
      subject: 'password_encryption',
      message: `password_encryption is "${v}": passwords set by other tools are stored as MD5`,
      fix: `ALTER SYSTEM SET password_encryption = 'scram-sha-256'; SELECT pg_reload_conf();`,
    });
  }
}
