import type { ClientBase } from 'pg';

// Who is connected as a set of roles, in one statement against pg_stat_activity, grouped by role,
// application name and client address. A non-superuser admin sees application_name for every
// session but client_addr and backend_start (and backend_type) only for roles it is a member of,
// or with pg_read_all_stats; the other columns come back NULL, which the report shows as unknown.

/** One group of sessions of a role. */
export interface RoleSessionGroup {
  role: string;
  applicationName: string | null;
  clientAddr: string | null;
  sessions: number;
  oldestBackendStart: Date | null;
}

/** The statement, exported so tests and the benchmark can recognise it (it is the one pgrotate sends). */
export const ROLE_SESSIONS_SQL = `SELECT usename::text AS role, NULLIF(application_name, '') AS application_name,
       host(client_addr) AS client_addr, count(*)::int AS sessions, min(backend_start) AS oldest
  FROM pg_catalog.pg_stat_activity
 WHERE usename = ANY($1::name[]) AND pid <> pg_catalog.pg_backend_pid()
   AND (backend_type = 'client backend' OR backend_type IS NULL)
 GROUP BY 1, 2, 3`;

/** The sessions of `roles` open now, grouped (one round trip whatever the number of roles). */
export async function roleSessions(client: ClientBase, roles: string[]): Promise<RoleSessionGroup[]> {
  if (roles.length === 0) return [];
  const res = await client.query<{
    role: string;
    application_name: string | null;
    client_addr: string | null;
    sessions: number;
    oldest: Date | null;
  }>(ROLE_SESSIONS_SQL, [roles]);
  return res.rows.map((r) => ({
    role: r.role,
    applicationName: r.application_name,
    clientAddr: r.client_addr,
    sessions: r.sessions,
    oldestBackendStart: r.oldest,
  }));
}
