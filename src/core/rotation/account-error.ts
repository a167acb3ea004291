import type { PgrotateError, PgrotateErrorOptions } from '../errors.js';

/** The account an error concerns: its name and target go on every error the engine raises. */
export interface AccountRef {
  readonly name: string;
  readonly target: string;
}

/** Any PgrotateError class (ProviderError takes a `secret` too). */
type AccountErrorClass = new (message: string, opts: never) => PgrotateError;

/** The options of an error class other than the account and target, which accountError fills in. */
type ExtraOptions<C extends AccountErrorClass> = Omit<NonNullable<ConstructorParameters<C>[1]>, 'account' | 'target'>;

/** An error of class `ErrorClass` about `account`: the one way the engine names the account and target it failed for. */
export function accountError<C extends AccountErrorClass>(
  ErrorClass: C,
  account: AccountRef,
  message: string,
  extra?: ExtraOptions<C>,
): InstanceType<C> {
  const opts: PgrotateErrorOptions = { ...extra, account: account.name, target: account.target };
  return new ErrorClass(message, opts as never) as InstanceType<C>;
}
