import { type AuditContext, isPrivilegeError } from '../audit-context.js';

/** Passwords still stored as MD5 hashes (pg_authid; superuser only). */
export async function checkMd5Passwords(ctx: AuditContext): Promise<void> {
  try {
    const res = await ctx.client.query<{ rolname: string; kind: string }>(
      `SELECT rolname, CASE WHEN rolpassword LIKE 'md5%' THEN 'md5' ELSE 'other' END AS kind FROM pg_catalog.pg_authid WHERE rolpassword IS NOT NULL`,
    );
    ctx.withPassword = new Set(res.rows.map((r) => r.rolname));
    for (const r of res.rows.filter((x) => x.kind === 'md5')) {
      ctx.findings.push({
        check: 'md5-password',
        severity: 'high',
        subject: r.rolname,
        message:
          'password is stored as an MD5 hash: weak, and the hash itself is enough to log in with md5 authentication',
        fix: ctx.managed.has(r.rolname)
          ? `pgrotate rotate ${ctx.managed.get(r.rolname)?.name} (pgrotate always sets a SCRAM-SHA-256 verifier)`
          : `set password_encryption = 'scram-sha-256' and set a new password for ${r.rolname}`,
      });
    }
  } catch (err) {
    if (!isPrivilegeError(err)) throw err;
    ctx.notChecked.push({
      check: 'md5-password',
      reason: `pg_authid is readable only by a superuser; admin login ${ctx.admin.role} is not one`,
    });
  }
}
