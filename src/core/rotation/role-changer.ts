import type { ClientBase } from 'pg';
import { selfAdministered, type AccountConfig } from '../config/config-schema.js';
import { SelfLoginRefusedError, TargetUnreachableError } from '../errors.js';
import { accountError } from './account-error.js';
import type { RotationIo } from './rotation-io.js';

// Where the statements that change an account's role run: on the target's admin connection, or,
// for `admin: self`, on a login as the role itself (it may set its own password, nothing else).

/**
 * Run `fn` on a connection that may change the account's role. With `admin: self` that is a new
 * login as the role with the first of `passwords` the server accepts: the credential PostgreSQL
 * holds now is the provider's current one before apply and the pending one after, and a resumed
 * rotation does not know which, so the caller lists both, likeliest first. When none logs in,
 * `refused` says what that means at the caller's step (the error names the account and target).
 */
export async function withRoleChanger<T>(
  io: RotationIo,
  account: AccountConfig,
  passwords: ReadonlyArray<string | null | undefined>,
  refused: (why: string) => string,
  fn: (client: ClientBase) => Promise<T>,
): Promise<T> {
  if (!selfAdministered(account)) return io.deps.targets.withAdmin(account.target, account.name, fn);
  if (account.strategy !== 'single-user')
    // The config refuses this at load; a caller building accounts by hand gets the same answer.
    throw new Error(`account ${account.name}: admin: self works only with the single-user strategy`);
  const role = account.role;
  const candidates = [...new Set(passwords.filter((p): p is string => typeof p === 'string' && p.length > 0))];
  let why = 'the provider holds no credential for it';
  for (const password of candidates) {
    io.deps.redactor.add(password);
    const r = await io.deps.targets.withLogin(account.target, role, password, fn);
    if (r.ok) return r.value;
    if (!r.login.authFailure)
      throw accountError(
        TargetUnreachableError,
        account,
        `account ${account.name}: cannot log in as role ${JSON.stringify(role)} to target ${account.target} (admin: self): ${io.deps.redactor.scrub(r.login.message)}`,
      );
    why = io.deps.redactor.scrub(r.login.message);
  }
  throw accountError(SelfLoginRefusedError, account, `account ${account.name}: ${refused(why)}`);
}

/** The recovery every refusal of a self login points to. */
export function adminNeededOnce(account: AccountConfig, role: string): string {
  return `An admin is needed once to recover account ${account.name}: set role ${JSON.stringify(role)}'s password to the one the provider holds (or rotate the account once with an admin login on target ${account.target})`;
}
