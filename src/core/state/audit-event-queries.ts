import type { StateTables } from './state-tables.js';
import { STATE_SQL } from './state-statements.js';
import type { AuditEvent } from './state-types.js';

// Reads of `audit_events` (appends go through StateTables.audit).

/** Audit events of one account, oldest first (the newest `limit`). */
export async function accountHistory(db: StateTables, account: string, limit: number): Promise<AuditEvent[]> {
  const res = await db.pool.query(STATE_SQL.accountHistory, [account, limit]);
  return res.rows.map((r) => ({
    id: String(r.id),
    at: r.at as Date,
    account: r.account as string | null,
    rotationId: r.rotation_id as string | null,
    kind: r.kind as string,
    actor: r.actor as string | null,
    detail: r.detail as Record<string, unknown>,
  }));
}
