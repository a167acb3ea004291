import type { StateTables } from './state-tables.js';
import { STATE_SQL } from './state-statements.js';

// The statements of an account sync (config -> accounts table), in one transaction serialised
// by an advisory lock, so several processes may sync at once. The planning (which due time an
// account gets) is the caller's; this module only compares, writes and retires.

/** An account that is new to the table or whose schedule needs re-planning. */
export interface ChangedAccount {
  name: string;
  lastRotatedAt: Date | null;
  /** An adopted account's base time: its secret's last change, else when it was adopted. */
  adoptedBase: Date | null;
  isNew: boolean;
}

/** A row to write for a changed account. */
export interface PlannedAccount {
  name: string;
  target: string;
  strategy: string;
  schedule: string;
  /** ISO time, or null when not scheduled. */
  next_due_at: string | null;
}

const BATCH = 10_000;

/**
 * Compare the configured `names` (with their schedule `keys`, same order) to the table, write
 * what `plan` returns for the changed ones, and retire accounts no longer configured. Returns
 * how many were retired.
 */
export async function syncAccountRows(
  db: StateTables,
  names: string[],
  keys: string[],
  plan: (changed: ChangedAccount[]) => PlannedAccount[],
): Promise<{ retired: number }> {
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(STATE_SQL.lockForTransaction, [`pgrotate:${db.schema}:account-sync`]);
    // Names and schedule keys travel as one newline-separated text each (neither can contain a
    // newline): node-postgres would build an escaped, quoted string per element of a text[]
    // parameter, and for 100,000 accounts that garbage was a large part of a worker's start-up peak.
    const joinedNames = names.join('\n');
    // The database compares; only accounts that are new or need re-planning come back.
    const res = await client.query<{
      name: string;
      last_rotated_at: Date | null;
      adopted_base: Date | null;
      is_new: boolean;
    }>(STATE_SQL.changedAccounts, [joinedNames, keys.join('\n')]);
    const rows = plan(
      res.rows.map((r) => ({
        name: r.name,
        lastRotatedAt: r.last_rotated_at,
        adoptedBase: r.adopted_base,
        isNew: r.is_new,
      })),
    );
    // One JSON text per batch: a single string to send, where five text[] parameters were
    // 50,000 escaped strings (start-up memory with a new fleet of 100,000 accounts).
    for (let i = 0; i < rows.length; i += BATCH) {
      await client.query(STATE_SQL.writePlannedAccounts, [JSON.stringify(rows.slice(i, i + BATCH))]);
    }
    const retired = await client.query(STATE_SQL.retireUnconfigured, [joinedNames]);
    await client.query('COMMIT');
    return { retired: retired.rowCount ?? 0 };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
