import { ProviderError, type PgrotateErrorOptions } from '../errors.js';
import type { SecretValue } from './secret-provider.js';

/**
 * `stagePending` found a pending value of another rotation. It carries that value so the engine
 * can decide what to do about it (a login tells debris from a live password) without a second
 * read of the store; the message names the secret and the other rotation, never the password.
 */
export class PendingConflictError extends ProviderError {
  constructor(
    message: string,
    readonly existing: SecretValue,
    opts: PgrotateErrorOptions & { secret?: string } = {},
  ) {
    super(message, opts);
  }
}
