import { SecretFormatError } from '../../src/core/errors.js';
import {
  OWNED_SECRET_KEYS,
  parseSecretObject,
  secretPayload,
  type SecretValue,
} from '../../src/core/provider/secret-provider.js';

// How a credential sits in a Secret's `data` (base64 of each value, as the API wants it):
//  - the account's Secret: one key per field of the secret format, each a string (port "5432"),
//    which is what pods mount as files or read as env; every other key is its owner's and is
//    written back byte for byte;
//  - the companion Secret: `pending` and `previous`, each the JSON of the secret format, so a
//    value and its kept keys come back exactly as they were staged.

/** A Secret's `data`: key → base64. */
export type SecretData = Record<string, string>;

const OWNED: ReadonlySet<string> = new Set(OWNED_SECRET_KEYS);

function decode(b64: string): string {
  return Buffer.from(b64, 'base64').toString('utf8');
}

function encode(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** The credential in an account Secret's `data` (its kept keys as strings). */
export function credentialOf(data: SecretData | undefined, where: { provider: string; secret: string }): SecretValue {
  const fields: Record<string, unknown> = {};
  for (const [key, b64] of Object.entries(data ?? {})) {
    Object.defineProperty(fields, key, { value: decode(b64), enumerable: true, writable: true, configurable: true });
  }
  if (typeof fields.port === 'string') {
    const port = fields.port;
    if (!/^\d{1,5}$/.test(port.trim())) {
      throw new SecretFormatError(
        `provider ${where.provider}: secret ${where.secret} is not a pgrotate credential (key "port" is not a port number)`,
        { secret: where.secret },
      );
    }
    fields.port = Number(port.trim());
  }
  return parseSecretObject(fields, where);
}

/**
 * An account Secret's new `data`: the owned fields of `value` (as strings), beside `kept`, the
 * current Secret's keys pgrotate does not own, unchanged. A Secret that does not exist yet gets the
 * value's kept keys instead (strings as they are, other JSON values as their JSON text).
 */
export function credentialData(value: SecretValue, kept: SecretData | null): SecretData {
  const out: SecretData = {};
  const keep = (key: string, b64: string) =>
    Object.defineProperty(out, key, { value: b64, enumerable: true, writable: true, configurable: true });
  if (kept) {
    for (const [key, b64] of Object.entries(kept)) if (!OWNED.has(key)) keep(key, b64);
  }
  for (const [key, v] of Object.entries(secretPayload(value))) {
    if (kept && !OWNED.has(key)) continue;
    keep(key, encode(typeof v === 'string' ? v : JSON.stringify(v)));
  }
  return out;
}

/** The value stored under `key` ("pending" or "previous") of a companion Secret, or null. */
export function companionValue(
  data: SecretData | undefined,
  key: 'pending' | 'previous',
  where: { provider: string; secret: string },
): SecretValue | null {
  const b64 = data?.[key];
  if (b64 === undefined) return null;
  let json: unknown;
  try {
    json = JSON.parse(decode(b64));
  } catch {
    throw new SecretFormatError(`provider ${where.provider}: secret ${where.secret} (${key}) is not JSON`, {
      secret: where.secret,
    });
  }
  return parseSecretObject(json, where);
}

/** A companion entry for `value`: the JSON of the secret format, base64. */
export function companionEntry(value: SecretValue): string {
  return encode(JSON.stringify(secretPayload(value)));
}
