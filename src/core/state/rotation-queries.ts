import type { StateTables } from './state-tables.js';
import { rotationFromRow, type RotationRecord, type RotationRow } from './rotation-record.js';
import type { RequestFacts, RequestStanding } from './state-types.js';

// Read-only statements on `<schema>.rotations` made outside a fence (writes go through the
// fence, see rotation-fence.ts).

/** The unfinished rotation of an account, if any. */
export async function runningRotation(db: StateTables, account: string): Promise<RotationRecord | null> {
  const res = await db.pool.query<RotationRow>(
    `SELECT * FROM ${db.s}.rotations WHERE account = $1 AND status = 'running'`,
    [account],
  );
  return res.rows[0] ? rotationFromRow(res.rows[0]) : null;
}

/** Names of the accounts with an unfinished rotation. */
export async function accountsWithRunningRotation(db: StateTables): Promise<Set<string>> {
  const res = await db.pool.query<{ account: string }>(
    `SELECT account FROM ${db.s}.rotations WHERE status = 'running'`,
  );
  return new Set(res.rows.map((r) => r.account));
}

/**
 * SQL condition on a `rotations` row (alias r): it did everything request $2/$3 asked for. It
 * succeeded, started after the request (state-database clock), and when sessions were to end
 * it ended them and expired the previous login at once (alternating accounts otherwise keep
 * their previous role for the grace period).
 */
function satisfiesSql(): string {
  return `r.account = $1 AND r.status = 'succeeded' AND r.started_at >= to_timestamp($2::double precision / 1000)
    AND (NOT $3::boolean OR (r.terminate_sessions AND r.sessions_ended IS NOT NULL
      AND (r.old_credential_expires_at IS NULL OR r.old_credential_expires_at <= r.finished_at)))`;
}

/** Did rotation `rotationId` do everything the request asked for? */
export async function rotationSatisfies(
  db: StateTables,
  account: string,
  req: RequestFacts,
  rotationId: string,
): Promise<boolean> {
  const res = await db.pool.query(`SELECT 1 FROM ${db.s}.rotations r WHERE ${satisfiesSql()} AND r.id = $4`, [
    account,
    req.requestedAt,
    req.terminateSessions,
    rotationId,
  ]);
  return (res.rowCount ?? 0) > 0;
}

/** The facts that decide whether a request still needs its own rotation: one round trip. */
export async function requestStanding(
  db: StateTables,
  account: string,
  req: RequestFacts,
): Promise<RequestStanding | null> {
  const res = await db.pool.query<{
    running: boolean;
    done_id: string | null;
    done_sessions: number | null;
    not_due: boolean;
  }>(
    `SELECT EXISTS (SELECT 1 FROM ${db.s}.rotations WHERE account = $1 AND status = 'running') AS running,
            d.id AS done_id,
            -- Sessions ended for the request: when it ends sessions, every rotation that finished
            -- after it ending sessions counts (one resumed for it, then the one that satisfies it,
            -- perhaps in an attempt of the job that died before reporting), not only the last.
            CASE WHEN d.id IS NULL OR NOT $3::boolean THEN d.sessions_ended
                 ELSE (SELECT COALESCE(SUM(x.sessions_ended), 0)::int FROM ${db.s}.rotations x
                        WHERE x.account = $1 AND x.status = 'succeeded' AND x.terminate_sessions
                          AND x.sessions_ended IS NOT NULL AND x.finished_at >= to_timestamp($2::double precision / 1000))
            END AS done_sessions,
            COALESCE((SELECT next_due_at IS NULL OR next_due_at > now() FROM ${db.s}.accounts WHERE name = $1), false) AS not_due
       FROM (SELECT 1) one
       LEFT JOIN LATERAL (SELECT r.id, r.sessions_ended FROM ${db.s}.rotations r WHERE ${satisfiesSql()} ORDER BY r.started_at DESC LIMIT 1) d ON true`,
    [account, req.requestedAt, req.terminateSessions],
  );
  const row = res.rows[0];
  return row
    ? { running: row.running, doneId: row.done_id, doneSessionsEnded: row.done_sessions, notDue: row.not_due }
    : null;
}
