import type { PgrotateConfig } from '../src/core/config/config-schema.js';
import { firstDueAt, nextDueAfter, scheduleKey } from '../src/core/schedule/next-due.js';
import type { ChangedAccount, PlannedAccount, StateStore } from '../src/core/state/state-store.js';

// Brings the state database's accounts in line with the config before scheduling: accounts
// new to pgrotate get a first due time (soon, spread by their stable offset, so a new fleet
// does not rotate all at once), accounts whose schedule changed are re-planned from their last
// rotation (or adoption), and accounts removed from the config stop being due. One round trip per batch
// (unnest), so 100k accounts sync in about a second.

export interface SyncResult {
  inserted: number;
  replanned: number;
  retired: number;
}

/** Sync the config's accounts into the state database; safe to run from several processes. */
export async function syncAccounts(
  state: StateStore,
  config: PgrotateConfig,
  now: Date = new Date(),
): Promise<SyncResult> {
  const byName = new Map(config.accounts.map((a) => [a.name, a]));
  const keyOf = (a: (typeof config.accounts)[number]) => scheduleKey(a.schedule ?? config.defaults.schedule);
  let inserted = 0;
  let replanned = 0;
  // Only accounts that are new or need re-planning come back from the database to be planned.
  const plan = (changed: ChangedAccount[]): PlannedAccount[] => {
    const rows: PlannedAccount[] = [];
    for (const r of changed) {
      const account = byName.get(r.name);
      if (!account) continue;
      const schedule = account.schedule ?? config.defaults.schedule;
      let next: Date | null;
      // An adopted account's age counts from its secret's last change, as a rotation's would.
      const base = r.lastRotatedAt ?? r.adoptedBase;
      if (base) next = nextDueAfter(schedule, base, account.name);
      // Still to adopt (jobs/account-adopt.ts decides): not due until adopted, so no tick rotates it first.
      else if ((account.onboard ?? config.defaults.onboard) === 'adopt') next = null;
      else next = firstDueAt(schedule, account.name, now);
      if (r.isNew) inserted++;
      else replanned++;
      rows.push({
        name: account.name,
        target: account.target,
        strategy: account.strategy,
        schedule: keyOf(account),
        next_due_at: next?.toISOString() ?? null,
      });
    }
    return rows;
  };
  const { retired } = await state.syncAccountRows(
    config.accounts.map((a) => a.name),
    config.accounts.map(keyOf),
    plan,
  );
  return { inserted, replanned, retired };
}
