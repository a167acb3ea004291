import type { Finding } from '../../../core/audit/audit-types.js';
import { type AuditContext, isPrivilegeError } from '../audit-context.js';

/** One row of pg_hba_file_rules (the columns this check reads). */
interface HbaRule {
  line_number: number;
  type: string;
  database: string[] | null;
  user_name: string[] | null;
  address: string | null;
  auth_method: string | null;
  error: string | null;
}

/** pg_hba.conf lines that accept trust, cleartext password or MD5 authentication. */
export async function checkHbaRules(ctx: AuditContext): Promise<void> {
  let rows: HbaRule[];
  try {
    rows = (
      await ctx.client.query<HbaRule>(
        `SELECT line_number, type, database, user_name, address, auth_method, error FROM pg_catalog.pg_hba_file_rules ORDER BY line_number`,
      )
    ).rows;
  } catch (err) {
    if (!isPrivilegeError(err)) throw err;
    ctx.notChecked.push({
      check: 'hba-rules',
      reason: `pg_hba_file_rules is readable only by a superuser (or with EXECUTE on pg_hba_file_rules()); admin login ${ctx.admin.role} cannot read it`,
    });
    return;
  }
  for (const r of rows) {
    const finding = hbaFinding(r);
    if (finding) ctx.findings.push(finding);
  }
}

/** What is wrong with one pg_hba.conf line, or null when nothing is. */
function hbaFinding(r: HbaRule): Finding | null {
  const line = `pg_hba.conf line ${r.line_number} (${r.type} ${(r.database ?? []).join(',')} ${(r.user_name ?? []).join(',')}${r.address ? ` ${r.address}` : ''})`;
  if (r.error)
    return {
      check: 'hba-rules',
      severity: 'low',
      subject: line,
      message: `the line has an error: ${r.error}`,
      fix: 'fix the line; PostgreSQL ignores pg_hba.conf changes until it parses',
    };
  const method = r.auth_method;
  if (method === 'trust')
    return {
      check: 'hba-rules',
      severity: r.type === 'local' ? 'high' : 'critical',
      subject: line,
      message: 'trust authentication: no password at all, so rotating credentials protects nothing here',
      fix: 'use scram-sha-256 (or peer for local admin access)',
    };
  if (method === 'password')
    return {
      check: 'hba-rules',
      severity: 'high',
      subject: line,
      message: 'password authentication sends the password in cleartext',
      fix: 'use scram-sha-256',
    };
  if (method === 'md5')
    return {
      check: 'hba-rules',
      severity: 'medium',
      subject: line,
      message: 'md5 authentication still accepts MD5-stored passwords (weaker, replayable hash)',
      fix: 'use scram-sha-256 once every password is stored as SCRAM',
    };
  return null;
}
