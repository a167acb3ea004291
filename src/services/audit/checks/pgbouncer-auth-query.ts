import { Redactor } from '../../../core/logging/redactor.js';
import { messageOf } from '../../../core/errors.js';
import { pgbouncerName, withPgbouncerAdmin } from '../../../core/pgbouncer/pgbouncer-admin.js';
import type { AuditContext } from '../audit-context.js';

/** A query honours VALID UNTIL if it reads the expiry column of pg_shadow or pg_authid. */
export function authQueryHonoursValidUntil(query: string): boolean {
  return /\b(rol)?valuntil\b|\brolvaliduntil\b/i.test(query);
}

/** The auth_query documented in docs/operations.md: an expired login gets no password, so PgBouncer refuses it. */
export const VALUNTIL_AUTH_QUERY =
  'SELECT usename, passwd FROM pg_shadow WHERE usename=$1 AND (valuntil IS NULL OR valuntil > now())';

/**
 * Each PgBouncer listed for the target that authenticates with auth_query (auth_user set) must
 * use a query that honours VALID UNTIL: the common `SELECT usename, passwd FROM pg_shadow WHERE
 * usename=$1` hands PgBouncer the password of an expired login, so an alternating account's
 * previous role keeps logging in through it. Read from the admin console (SHOW CONFIG).
 */
export async function checkPgbouncerAuthQuery(ctx: AuditContext): Promise<void> {
  const target = ctx.config.targets[ctx.target];
  for (const instance of target?.pgbouncer ?? []) {
    const name = pgbouncerName(ctx.target, instance);
    const opts = {
      sslmode: target?.sslmode ?? 'verify-full',
      caFile: target?.caFile,
      connectTimeoutMs: target?.connectTimeout ?? 10_000,
      redactor: new Redactor(),
    };
    let config: Map<string, string>;
    try {
      config = await withPgbouncerAdmin(ctx.target, instance, opts, (c) => c.config());
    } catch (err) {
      ctx.notChecked.push({ check: 'pgbouncer-auth-query', reason: messageOf(err) });
      continue;
    }
    const authUser = config.get('auth_user') ?? '';
    const query = config.get('auth_query') ?? '';
    if (authUser === '' || authQueryHonoursValidUntil(query)) continue;
    ctx.findings.push({
      check: 'pgbouncer-auth-query',
      severity: 'high',
      subject: `${instance.host}:${instance.port}`,
      message: `${name} authenticates with auth_query ${JSON.stringify(query)}, which ignores VALID UNTIL: an expired login (an alternating account's previous role) still logs in through it`,
      fix: `auth_query = ${VALUNTIL_AUTH_QUERY}  (in pgbouncer.ini, then RELOAD on the admin console)`,
    });
  }
}
