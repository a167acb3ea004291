import type { StateTables } from './state-tables.js';
import { STATE_SQL } from './state-statements.js';
import { rotationFromRow, type RotationRecord, type RotationRow } from './rotation-record.js';
import type { RequestFacts, RequestStanding } from './state-types.js';

// Read-only statements on `rotations` made outside a fence (writes go through the
// fence, see rotation-fence.ts).

/** The unfinished rotation of an account, if any. */
export async function runningRotation(db: StateTables, account: string): Promise<RotationRecord | null> {
  const res = await db.pool.query<RotationRow>(STATE_SQL.runningRotation, [account]);
  return res.rows[0] ? rotationFromRow(res.rows[0]) : null;
}

/** Names of the accounts with an unfinished rotation. */
export async function accountsWithRunningRotation(db: StateTables): Promise<Set<string>> {
  const res = await db.pool.query<{ account: string }>(STATE_SQL.accountsWithRunningRotation);
  return new Set(res.rows.map((r) => r.account));
}

/** Did rotation `rotationId` do everything the request asked for? */
export async function rotationSatisfies(
  db: StateTables,
  account: string,
  req: RequestFacts,
  rotationId: string,
): Promise<boolean> {
  const res = await db.pool.query(STATE_SQL.rotationSatisfies, [
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
  }>(STATE_SQL.requestStanding, [account, req.requestedAt, req.terminateSessions]);
  const row = res.rows[0];
  return row
    ? { running: row.running, doneId: row.done_id, doneSessionsEnded: row.done_sessions, notDue: row.not_due }
    : null;
}
