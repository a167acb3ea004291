import { ProviderError } from '../../src/core/errors.js';
import type { Redactor } from '../../src/core/logging/redactor.js';
import type { VaultCallError } from './vault-client.js';

// Vault's failures in terms of the secret pgrotate was working on: which call, which path, which
// capability the policy lacks, and whether retrying can help (a policy problem is permanent).

/** One call to Vault, as error messages describe it. */
export type VaultOp = {
  what: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  display: string;
  capability: string;
  secret: string;
};

/** The provider as its error messages name it. */
export interface VaultWhere {
  provider: string;
  address: string;
  namespace?: string | undefined;
  mount: string;
  redactor: Redactor;
}

/** The Vault address, with its namespace. */
function vaultAt(where: VaultWhere): string {
  return `${where.address}${where.namespace ? ` (namespace ${where.namespace})` : ''}`;
}

/** The given token no longer exists: no policy change helps, only a new token. */
export function vaultTokenGoneError(op: VaultOp, where: VaultWhere): ProviderError {
  const at = vaultAt(where);
  return new ProviderError(
    `provider ${where.provider}: cannot ${op.what} secret ${op.secret}: the Vault token is expired or revoked (Vault at ${at} refused it, and it cannot look itself up); configure a valid token for provider ${where.provider} (a renewable or periodic one is kept alive by pgrotate)`,
    { secret: op.secret, permanent: true },
  );
}

/** Vault's failure of `op` as an error naming the provider, the secret and what to fix. */
export function explainVaultError(err: VaultCallError, op: VaultOp, where: VaultWhere): Error {
  const { secret } = op;
  const at = vaultAt(where);
  const detail = where.redactor.scrub(err.errors.join('; '));
  const prefix = `provider ${where.provider}: cannot ${op.what} secret ${secret}`;
  if (err.status === null && (err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT')) {
    return new ProviderError(`${prefix}: Vault at ${at} did not answer within the provider's timeout (${err.code})`, {
      secret,
    });
  }
  if (err.status === null)
    return new ProviderError(`${prefix}: Vault at ${at} is unreachable (${err.code ?? 'network error'})`, { secret });
  if (err.status === 503 && /sealed/i.test(detail))
    return new ProviderError(`${prefix}: Vault at ${at} is sealed`, { secret });
  if (err.status === 404 && /no handler for route/i.test(detail)) {
    return new ProviderError(`${prefix}: mount ${where.mount} does not exist at ${at} (no handler for ${op.display})`, {
      secret,
    });
  }
  if (err.status === 404) return new NotFound(`${prefix}: not found`, err.body);
  if (err.status === 400 && /check-and-set/i.test(detail)) return new CasMismatch(`${prefix}: check-and-set mismatch`);
  if (err.status === 403) {
    // A policy or mount problem: retrying cannot help, so the job fails at once (permanent).
    if (isPreflight(err))
      return new ProviderError(
        `${prefix}: mount ${where.mount} does not exist or the token may not use it (at ${at})`,
        { secret, permanent: true },
      );
    return new ProviderError(
      `${prefix}: permission denied at ${at}: the token's policy needs the "${op.capability}" capability on path "${op.display}" (${detail || 'HTTP 403'})`,
      { secret, permanent: true },
    );
  }
  return new ProviderError(
    `${prefix}: Vault at ${at} answered HTTP ${err.status} for ${op.display}${detail ? `: ${detail}` : ''}`,
    { secret },
  );
}

/** Vault refused a call in its preflight capability check (the token may not use the mount). */
export function isPreflight(err: VaultCallError): boolean {
  return err.errors.some((e) => /preflight capability check/i.test(e));
}

/** Internal: a 404 from Vault (the body may carry version metadata). */
export class NotFound extends ProviderError {
  constructor(
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

/** Internal: a check-and-set write found a different version. */
export class CasMismatch extends ProviderError {}
