import { type AuditContext, setting } from '../audit-context.js';

/**
 * Statement logging that writes other tools' `CREATE/ALTER ROLE … PASSWORD 'plain'` to the
 * server log. pgrotate itself only ever sends SCRAM verifiers, but people and other tools do not.
 */
export async function checkStatementLogging(ctx: AuditContext): Promise<void> {
  const level = await setting(ctx.client, 'log_statement');
  if (level === 'all' || level === 'ddl' || level === 'mod') {
    ctx.findings.push({
      check: 'statement-logging',
      severity: 'high',
      subject: 'log_statement',
      message: `log_statement = ${level} writes every CREATE/ALTER ROLE … PASSWORD '…' sent in plaintext by other tools to the server log`,
      fix: `ALTER SYSTEM SET log_statement = 'none' (use pgaudit with log_parameter off for auditing), or make every tool send pre-hashed SCRAM passwords`,
    });
  }
  const duration = await setting(ctx.client, 'log_min_duration_statement');
  if (duration !== '-1') {
    ctx.findings.push({
      check: 'statement-logging',
      severity: 'medium',
      subject: 'log_min_duration_statement',
      message: `log_min_duration_statement = ${duration} logs the text of slow statements, including password changes`,
      fix: `ALTER SYSTEM SET log_min_duration_statement = -1, or log sampled durations without statement text (log_duration)`,
    });
  }
}

/** `log_statement` set per role or per database (ALTER ROLE/DATABASE … SET), which the server setting does not show. */
export async function checkLoggingOverrides(ctx: AuditContext): Promise<void> {
  const overrides = await ctx.client.query<{ who: string; setting: string }>(
    `SELECT COALESCE(r.rolname, '(all roles)') || ' in ' || COALESCE(d.datname, '(all databases)') AS who, s.setting
       FROM pg_catalog.pg_db_role_setting rs
       CROSS JOIN LATERAL unnest(rs.setconfig) AS s(setting)
       LEFT JOIN pg_catalog.pg_roles r ON r.oid = rs.setrole
       LEFT JOIN pg_catalog.pg_database d ON d.oid = rs.setdatabase
      WHERE s.setting ~ '^log_statement=(all|ddl|mod)$'`,
  );
  for (const o of overrides.rows) {
    ctx.findings.push({
      check: 'statement-logging',
      severity: 'high',
      subject: o.who,
      message: `${o.setting} is set for ${o.who}: plaintext passwords in its statements reach the server log`,
      fix: `ALTER ROLE … / ALTER DATABASE … RESET log_statement`,
    });
  }
}
