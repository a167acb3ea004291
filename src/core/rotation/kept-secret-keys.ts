import { SecretFormatError } from '../errors.js';
import type { KeptSecretKeys, SecretValue } from '../provider/secret-provider.js';

// A rotation writes the owned fields anew and keeps every other key of the current secret (an
// RDS secret's dbInstanceIdentifier, a team's pool_size), so consumers reading them keep working.
// A kept key is carried over unchanged, so one that holds the current password (a DATABASE_URL,
// a PGPASSWORD copy) would sit stale beside the new password, still readable after the password
// it holds stopped working: such a secret is refused before anything changes.

/** Passwords shorter than this are not searched for in kept keys: a short one matches by chance. */
export const MIN_SEARCHED_PASSWORD_LENGTH = 8;

export interface KeptKeysWhere {
  account: string;
  target: string;
  provider: string;
  secret: string;
}

/**
 * The keys the next value of a secret keeps from its current value (undefined when none), or a
 * SecretFormatError naming the account, secret and keys when a kept key holds the current password.
 * `rendered` are the account's secretTemplate keys: written anew at every rotation, never kept.
 */
export function keptSecretKeys(
  current: SecretValue | null,
  where: KeptKeysWhere,
  rendered: ReadonlySet<string> = new Set(),
): KeptSecretKeys | undefined {
  const extra = current?.extra ? withoutKeys(current.extra, rendered) : undefined;
  if (!current || !extra || Object.keys(extra).length === 0) return undefined;
  const stale = keysHoldingPassword(extra, current.password);
  if (stale.length > 0) {
    // A key is named in the error unless its name itself carries the password.
    const names = stale
      .map((k) => (mentions(k, current.password) ? '(a key whose name holds the password)' : JSON.stringify(k)))
      .join(', ');
    throw new SecretFormatError(
      `account ${where.account}: secret ${where.secret} in provider ${where.provider} has key(s) ${names} holding the current password; ` +
        `pgrotate keeps keys it does not own unchanged, so they would hold a stale password beside the new one. Nothing was changed. ` +
        `Remove the password from those keys (applications can build a URL from username, password, host, port and dbname), ` +
        `or let pgrotate render them at every rotation with secretTemplate (a key that was a secretTemplate key once is no longer rendered once removed from the config), then rotate again`,
      { account: where.account, target: where.target, secret: where.secret },
    );
  }
  return extra;
}

/** `extra` without `keys`, as own data properties in stored order. */
function withoutKeys(extra: KeptSecretKeys, keys: ReadonlySet<string>): KeptSecretKeys {
  if (keys.size === 0) return extra;
  const out: KeptSecretKeys = {};
  for (const [k, v] of Object.entries(extra))
    if (!keys.has(k)) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

/** Top-level keys of `extra` whose value (at any depth, as text or URL-encoded) contains `password`. */
export function keysHoldingPassword(extra: KeptSecretKeys, password: string): string[] {
  if (password.length < MIN_SEARCHED_PASSWORD_LENGTH) return [];
  const holds = (v: unknown, depth: number): boolean => {
    if (typeof v === 'string') return mentions(v, password);
    if (depth > 32 || v === null || typeof v !== 'object') return false;
    return Object.entries(v as Record<string, unknown>).some(
      ([k, inner]) => mentions(k, password) || holds(inner, depth + 1),
    );
  };
  return Object.entries(extra)
    .filter(([k, v]) => mentions(k, password) || holds(v, 0))
    .map(([k]) => k);
}

/** Does `text` contain `password`, as it is or URL-encoded (a connection URL's userinfo)? */
function mentions(text: string, password: string): boolean {
  return text.includes(password) || text.includes(encodeURIComponent(password));
}
