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
    const byName = new Map(config.accounts.map((a) => [a.name, a]));
    const keyOf = (a: (typeof config.accounts)[number]) => scheduleKey(a.schedule ?? config.defaults.schedule);
    // Names and schedule keys travel as one newline-separated text each (neither can contain a
    // newline): node-postgres would build an escaped, quoted string per element of a text[]
    // parameter, and for 100,000 accounts that garbage was a large part of a worker's start-up peak.
    const names = config.accounts.map((a) => a.name).join('\n');
    // The database compares; only accounts that are new or need re-planning come back.
    const res = await client.query<{ name: string; last_rotated_at: Date | null; is_new: boolean }>(
      `SELECT c.name, a.last_rotated_at, a.name IS NULL AS is_new
         FROM unnest(string_to_array($1, E'\\n'), string_to_array($2, E'\\n')) AS c(name, key)
         LEFT JOIN ${state.s}.accounts a ON a.name = c.name
        WHERE a.name IS NULL OR a.schedule IS DISTINCT FROM c.key OR (a.next_due_at IS NULL AND c.key <> 'manual')`,
      [names, config.accounts.map(keyOf).join('\n')],
    );
    const rows: Array<{ name: string; target: string; strategy: string; schedule: string; next_due_at: string | null }> = [];
    let inserted = 0;
    let replanned = 0;
    for (const r of res.rows) {
      const account = byName.get(r.name);
      if (!account) continue;
      const schedule = account.schedule ?? config.defaults.schedule;
      let next: Date | null;
      if (r.is_new) {
        next = firstDueAt(schedule, account.name, now);
        inserted++;
      } else {
        next = r.last_rotated_at ? nextDueAfter(schedule, r.last_rotated_at, account.name) : firstDueAt(schedule, account.name, now);
        replanned++;
      }
      rows.push({ name: account.name, target: account.target, strategy: account.strategy, schedule: keyOf(account), next_due_at: next?.toISOString() ?? null });
    }
    // One JSON text per batch: a single string to send, where five text[] parameters were
    // 50,000 escaped strings (start-up memory with a new fleet of 100,000 accounts).
    for (let i = 0; i < rows.length; i += BATCH) {
      await client.query(
        `INSERT INTO ${state.s}.accounts (name, target, strategy, schedule, next_due_at)
         SELECT name, target, strategy, schedule, next_due_at
           FROM json_to_recordset($1::json) AS r(name text, target text, strategy text, schedule text, next_due_at timestamptz)
         ON CONFLICT (name) DO UPDATE SET target = EXCLUDED.target, strategy = EXCLUDED.strategy,
           schedule = EXCLUDED.schedule, next_due_at = EXCLUDED.next_due_at, updated_at = now()`,
        [JSON.stringify(rows.slice(i, i + BATCH))],
      );
    }
    const retired = await client.query(
      `UPDATE ${state.s}.accounts SET next_due_at = NULL, schedule = 'not-configured', updated_at = now()
       WHERE next_due_at IS NOT NULL AND NOT (name = ANY(string_to_array($1, E'\\n')))`,
      [names],
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
