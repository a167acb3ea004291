import type { App } from '../src/core/app.js';
import { accountRoles, type AccountConfig } from '../src/core/config/config-schema.js';
import { messageOf } from '../src/core/errors.js';
import { nextDueAfter } from '../src/core/schedule/next-due.js';

// Onboarding by adoption (`onboard: adopt`): an account pgrotate has never rotated, whose secret
// already holds a credential that logs in, is taken as current without a password change. Its
// first rotation is due one interval after the secret's own last change (where the store says),
// else after the adoption. A secret that is missing, malformed, for another role or does not log
// in is refused with the reason: the account is not due (nothing is rotated) and the refusal is
// tried again at the next run until the secret is fixed or `pgrotate rotate` rotates it. Runs
// after the account sync (run-due, worker start), which leaves such accounts without a due time.

/** What one adoption pass did. */
export interface AdoptionResult {
  adopted: string[];
  refused: Array<{ name: string; reason: string }>;
}

/** Adopt the configured `onboard: adopt` accounts that are still to adopt; `actor` goes to the audit trail. */
export async function adoptNewAccounts(app: App, actor: string): Promise<AdoptionResult> {
  const wanted = app.config.accounts.filter((a) => (a.onboard ?? app.config.defaults.onboard) === 'adopt');
  const out: AdoptionResult = { adopted: [], refused: [] };
  if (wanted.length === 0) return out;
  const byName = new Map(wanted.map((a) => [a.name, a]));
  const todo = await app.state.adoptionCandidates([...byName.keys()]);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < todo.length) {
      const account = byName.get((todo[next++] as { name: string }).name) as AccountConfig;
      await app.redactor.scoped(() => adoptOne(app, account, actor, out));
    }
  };
  await Promise.all(Array.from({ length: Math.min(app.config.limits.concurrency, todo.length) }, lane));
  return out;
}

async function adoptOne(app: App, account: AccountConfig, actor: string, out: AdoptionResult): Promise<void> {
  const log = app.log.child({ component: 'adopt', account: account.name });
  let reason: string;
  try {
    const found = await checkSecret(app, account);
    if (typeof found === 'string') reason = found;
    else {
      const schedule = account.schedule ?? app.config.defaults.schedule;
      const nextDueAt = nextDueAfter(schedule, found.lastChanged ?? new Date(), account.name);
      const detail = {
        role: found.role,
        lastChanged: found.lastChanged?.toISOString() ?? null,
        nextDueAt: nextDueAt?.toISOString() ?? null,
      };
      const done = await app.state.adoptAccount(
        { name: account.name, lastChanged: found.lastChanged, activeRole: found.role, nextDueAt, actor },
        detail,
      );
      if (done) {
        out.adopted.push(account.name);
        log.info(detail, 'account adopted: its existing secret logs in and stays current');
      }
      return;
    }
  } catch (err) {
    reason = app.redactor.scrub(messageOf(err));
  }
  const message = app.redactor.scrub(
    `account ${account.name}: secret ${account.secret} (provider ${account.provider}) not adopted: ${reason}`,
  );
  await app.state.refuseAdoption(account.name, message, actor);
  out.refused.push({ name: account.name, reason: message });
  log.warn({ reason: message }, 'account not adopted (and not rotated): fix its secret or rotate it explicitly');
}

/** The adoptable credential's role and last change, or why the secret cannot be adopted. */
async function checkSecret(
  app: App,
  account: AccountConfig,
): Promise<{ role: string; lastChanged: Date | null } | string> {
  const provider = app.providers.get(account.provider);
  if (!provider) return `provider ${account.provider} is not configured`;
  const value = await provider.getCurrent(account.secret);
  if (!value) return 'the secret does not exist';
  app.redactor.add(value.password);
  const roles = accountRoles(account);
  if (!roles.includes(value.username))
    return `its username ${JSON.stringify(value.username)} is not the account's role (${roles.join(', ')})`;
  const login = await app.targets.tryLogin(account.target, value.username, value.password, 'pgrotate-adopt');
  if (!login.ok) return `its credential does not log in to target ${account.target}: ${login.message}`;
  return { role: value.username, lastChanged: value.lastChanged ?? null };
}
