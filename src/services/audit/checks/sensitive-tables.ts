import { type AuditContext } from '../audit-context.js';

/** Tables the config marks sensitive must have row-level security enabled. */
export async function checkSensitiveTables(ctx: AuditContext): Promise<void> {
  const tables = ctx.config.targets[ctx.target]?.sensitiveTables ?? [];
  for (const name of tables) {
    const [schema, table] = name.split('.') as [string, string];
    const res = await ctx.client.query<{ relrowsecurity: boolean; relforcerowsecurity: boolean }>(
      `SELECT c.relrowsecurity, c.relforcerowsecurity FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
      [schema, table],
    );
    const row = res.rows[0];
    if (!row) {
      ctx.findings.push({
        check: 'row-level-security',
        severity: 'low',
        subject: name,
        message: 'listed in sensitiveTables but not found in the target database',
        fix: `correct targets.${ctx.target}.sensitiveTables`,
      });
    } else if (!row.relrowsecurity) {
      ctx.findings.push({
        check: 'row-level-security',
        severity: 'high',
        subject: name,
        message: 'holds sensitive data without row-level security: every role with SELECT sees every row',
        fix: `ALTER TABLE ${name} ENABLE ROW LEVEL SECURITY; then CREATE POLICY … for each reader`,
      });
    }
  }
}
