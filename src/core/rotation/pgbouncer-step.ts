import { PgbouncerError } from '../errors.js';
import { accountError, type AccountRef } from './account-error.js';

/** Run a PgBouncer step of `account`'s rotation; its failure names the account as well as the instance. */
export async function forAccount<T>(account: AccountRef, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof PgbouncerError) || err.account !== undefined) throw err;
    throw accountError(PgbouncerError, account, `account ${account.name}: ${err.message}`, { cause: err });
  }
}
