import type { App } from '../../core/app.js';
import { runBounded } from '../../core/concurrency/run-bounded.js';
import { messageOf } from '../../core/errors.js';
import { roleSessions } from '../../core/pg/role-sessions.js';
import type { AccountInGrace, RoleClient } from '../../core/state/previous-role-usage-store.js';

// One live look at pg_stat_activity for the previous roles of the accounts in grace: one
// statement per target, whatever the number of accounts on it (issue 27: the sampling's cost
// grows with the targets, not with the accounts).

/** Targets sampled at once. */
const TARGET_CONCURRENCY = 4;
/** Client groups kept per account (the busiest first); the session count covers them all. */
const MAX_CLIENTS = 5;

/** What one sample saw of an account's previous role. */
export interface RoleUsage {
  sessions: number;
  clients: RoleClient[];
  oldestBackendStart: Date | null;
}

/** Sample every account's previous role; accounts of a target that could not be read are missing from the map (and the target is in `failed`). */
export async function samplePreviousRoles(
  app: App,
  accounts: AccountInGrace[],
): Promise<{ usage: Map<string, RoleUsage>; failed: Map<string, string>; queries: number }> {
  const byTarget = new Map<string, AccountInGrace[]>();
  for (const a of accounts) {
    const list = byTarget.get(a.target);
    if (list) list.push(a);
    else byTarget.set(a.target, [a]);
  }
  const usage = new Map<string, RoleUsage>();
  const failed = new Map<string, string>();
  let queries = 0;
  await runBounded([...byTarget], TARGET_CONCURRENCY, async ([target, list]) => {
    try {
      queries++;
      const groups = await app.targets.withAdmin(target, undefined, (c) =>
        roleSessions(
          c,
          list.map((a) => a.role),
        ),
      );
      const byRole = new Map<string, RoleUsage>();
      for (const g of groups) {
        const u = byRole.get(g.role) ?? { sessions: 0, clients: [], oldestBackendStart: null };
        u.sessions += g.sessions;
        u.clients.push({ applicationName: g.applicationName, clientAddr: g.clientAddr, sessions: g.sessions });
        if (g.oldestBackendStart && (!u.oldestBackendStart || g.oldestBackendStart < u.oldestBackendStart))
          u.oldestBackendStart = g.oldestBackendStart;
        byRole.set(g.role, u);
      }
      for (const a of list) {
        const u = byRole.get(a.role) ?? { sessions: 0, clients: [], oldestBackendStart: null };
        u.clients = [...u.clients].sort((x, y) => y.sessions - x.sessions).slice(0, MAX_CLIENTS);
        usage.set(a.account, u);
      }
    } catch (err) {
      failed.set(target, app.redactor.scrub(messageOf(err)));
    }
  });
  return { usage, failed, queries };
}

/** One line for people: "reports_a: 3 sessions, billing-worker from 10.0.0.7". */
export function describeUsage(role: string, u: RoleUsage): string {
  if (u.sessions === 0) return `${role}: no sessions`;
  const who = u.clients.map((c) => {
    const app = c.applicationName ?? 'unnamed application';
    const from = c.clientAddr ? ` from ${c.clientAddr}` : '';
    return `${app}${from}${u.clients.length > 1 ? ` (${c.sessions})` : ''}`;
  });
  return `${role}: ${u.sessions} session${u.sessions === 1 ? '' : 's'}, ${who.join(', ')}`;
}
