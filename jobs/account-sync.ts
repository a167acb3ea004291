import type { PgrotateConfig } from '../src/config/config-schema.js';
import { firstDueAt, nextDueAfter, scheduleKey } from '../src/schedule/next-due.js';
import type { StateStore } from '../src/state/state-store.js';

// Brings the state database's accounts in line with the config before scheduling: accounts
// new to pgrotate get a first due time (soon, spread by their stable offset, so a new fleet
// does not rotate all at once), accounts whose schedule changed are re-planned from their last
// rotation, and accounts removed from the config stop being due. One round trip per batch
// (unnest), so 100k accounts sync in about a second.

export interface SyncResult {
  inserted: number;
  replanned: number;
  retired: number;
}

const BATCH = 10_000;

/** Sync the config's accounts into the state database; safe to run from several processes. */
export async function syncAccounts(state: StateStore, config: PgrotateConfig, now: Date = new Date()): Promise<SyncResult> {
  const client = await state.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`pgrotate:${state.schema}:account-sync`]);
    const existing = new Map<string, { schedule: string | null; lastRotatedAt: Date | null; nextDueAt: Date | null }>();
    const res = await client.query<{ name: string; schedule: string | null; last_rotated_at: Date | null; next_due_at: Date | null }>(
      `SELECT name, schedule, last_rotated_at, next_due_at FROM ${state.s}.accounts`,
    );
    for (const r of res.rows) existing.set(r.name, { schedule: r.schedule, lastRotatedAt: r.last_rotated_at, nextDueAt: r.next_due_at });

    const rows: Array<[string, string, string, string, string | null]> = [];
    let inserted = 0;
    let replanned = 0;
    for (const account of config.accounts) {
      const schedule = account.schedule ?? config.defaults.schedule;
      const key = scheduleKey(schedule);
      const row = existing.get(account.name);
      let next: Date | null;
      if (!row) {
        next = firstDueAt(schedule, account.name, now);
        inserted++;
      } else if (row.schedule !== key || (row.nextDueAt === null && schedule !== 'manual')) {
        next = row.lastRotatedAt ? nextDueAfter(schedule, row.lastRotatedAt, account.name) : firstDueAt(schedule, account.name, now);
        replanned++;
      } else {
        continue;
      }
      rows.push([account.name, account.target, account.strategy, key, next?.toISOString() ?? null]);
    }
    for (let i = 0; i < rows.length; i += BATCH) {
      const batch = rows.slice(i, i + BATCH);
      await client.query(
        `INSERT INTO ${state.s}.accounts (name, target, strategy, schedule, next_due_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
         ON CONFLICT (name) DO UPDATE SET target = EXCLUDED.target, strategy = EXCLUDED.strategy,
           schedule = EXCLUDED.schedule, next_due_at = EXCLUDED.next_due_at, updated_at = now()`,
        [batch.map((r) => r[0]), batch.map((r) => r[1]), batch.map((r) => r[2]), batch.map((r) => r[3]), batch.map((r) => r[4])],
      );
    }
    const configured = config.accounts.map((a) => a.name);
    const retired = await client.query(
      `UPDATE ${state.s}.accounts SET next_due_at = NULL, schedule = 'not-configured', updated_at = now()
       WHERE next_due_at IS NOT NULL AND NOT (name = ANY($1::text[]))`,
      [configured],
    );
    await client.query('COMMIT');
    return { inserted, replanned, retired: retired.rowCount ?? 0 };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
