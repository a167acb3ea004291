import { z } from 'zod';
import { SecretFormatError } from '../errors.js';

// The one interface every secret store implements. The engine relies on exactly these
// guarantees, and test/conformance/provider-conformance.ts checks them for each provider:
//  - readers of the store's normal location see only the *current* value;
//  - a *pending* value lives apart from current, tagged with its rotation id;
//  - staging the same rotation id twice keeps the first value (a retried step re-uses it);
//  - promoting is idempotent, and the superseded current stays readable as *previous*.

/** The JSON every provider stores: AWS's RDS rotation shape plus rotation facts. */
export const secretValueSchema = z.object({
  username: z.string().min(1),
  password: z.string().min(1),
  host: z.string().optional(),
  port: z.number().int().optional(),
  dbname: z.string().optional(),
  engine: z.string().optional(),
  rotatedAt: z.string().optional(),
  rotationId: z.string().optional(),
  /** When pgrotate next rotates this credential (absent: a manual schedule). */
  rotatesAt: z.string().optional(),
  /** When the previous role's password stops working (alternating accounts that had one). */
  previousValidUntil: z.string().optional(),
});

/**
 * The keys pgrotate writes and overwrites at every rotation. Every other key of a stored secret
 * (an RDS secret's dbInstanceIdentifier, a team's pool_size) belongs to its owner and is kept.
 */
export const OWNED_SECRET_KEYS = [
  'username',
  'password',
  'host',
  'port',
  'dbname',
  'engine',
  'rotatedAt',
  'rotationId',
  'rotatesAt',
  'previousValidUntil',
] as const;

/** Keys of a stored secret that pgrotate does not own, with their values exactly as stored. */
export type KeptSecretKeys = Record<string, unknown>;

export type SecretValue = z.output<typeof secretValueSchema> & {
  /**
   * The stored secret's keys pgrotate does not own, when it has any: written back beside the
   * owned fields (never over them), so consumers that read them keep working across rotations.
   */
  extra?: KeptSecretKeys;
  /**
   * When the store says this value last changed (KV created_time of the version, AWS CreatedDate
   * of AWSCURRENT's version, Azure updatedOn), where it says; only getCurrent sets it. Never
   * stored: adoption bases an adopted account's first due time on it.
   */
  lastChanged?: Date;
};

/** The JSON object a provider stores for a value: the owned fields, then the kept keys. */
export type StoredSecret = Record<string, unknown>;

/** A value written by pgrotate always carries every field. */
export interface RotatedSecretValue extends SecretValue {
  host: string;
  port: number;
  dbname: string;
  engine: 'postgres';
  rotatedAt: string;
  rotationId: string;
  /**
   * When this credential is next due for rotation (ISO time), if the schedule says. Metadata for
   * the store (Azure Key Vault sets the secret's expiresOn from it); not part of the secret format.
   */
  nextDueAt?: string;
}

export interface SecretProvider {
  /** The name of this provider in the config (`providers.<name>`). */
  readonly name: string;
  /** The value consumers read now, or null when the secret does not exist yet. */
  getCurrent(secret: string): Promise<SecretValue | null>;
  /** The pending value, or null when none is staged. */
  getPending(secret: string): Promise<SecretValue | null>;
  /** The value that `current` replaced at the last promote, or null. */
  getPrevious(secret: string): Promise<SecretValue | null>;
  /**
   * Store `value` as pending. When a pending value with the same rotation id already exists it is
   * kept and returned unchanged; a pending value of another rotation is a PendingConflictError
   * carrying that value (the engine decides what to do about it, then stages again). The common
   * case (no pending value) should cost the store one write.
   */
  stagePending(secret: string, value: RotatedSecretValue): Promise<SecretValue>;
  /**
   * Make the pending value of `rotationId` current; a no-op when it already is. `staged`, when
   * the caller holds it, is that pending value exactly as this rotation staged it (stagePending's
   * answer) or read it back (getPending): a provider may write it instead of reading the pending
   * value again, so no provider needs to keep a password of its own between the calls.
   */
  promotePending(secret: string, rotationId: string, staged?: SecretValue): Promise<void>;
  /** Remove the pending value if it belongs to `rotationId`. */
  discardPending(secret: string, rotationId: string): Promise<void>;
  /** Release connections and timers. */
  close(): Promise<void>;
}

const OWNED: ReadonlySet<string> = new Set(OWNED_SECRET_KEYS);

/**
 * What a provider stores for `value`: exactly the documented fields in a stable order, then the
 * kept keys in their stored order. A kept key can never replace an owned field.
 */
export function secretPayload(value: SecretValue): StoredSecret {
  const out: StoredSecret = {};
  for (const key of OWNED_SECRET_KEYS) if (value[key] !== undefined) out[key] = value[key];
  for (const [key, v] of Object.entries(value.extra ?? {})) if (!OWNED.has(key)) setOwn(out, key, v);
  return out;
}

/** Parse a stored secret's text, with an error naming the provider and secret (never the text). */
export function parseSecretText(text: string, where: { provider: string; secret: string }): SecretValue {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new SecretFormatError(`provider ${where.provider}: secret ${where.secret} is not JSON`, {
      secret: where.secret,
    });
  }
  return parseSecretObject(json, where);
}

/** Validate an already-decoded secret object. */
export function parseSecretObject(json: unknown, where: { provider: string; secret: string }): SecretValue {
  const parsed = secretValueSchema.safeParse(json);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => String(i.path[0] ?? 'value')))].join(', ');
    throw new SecretFormatError(
      `provider ${where.provider}: secret ${where.secret} is not a pgrotate credential (missing or invalid: ${fields})`,
      {
        secret: where.secret,
      },
    );
  }
  const value: SecretValue = parsed.data;
  const extra = keptKeysOf(json as Record<string, unknown>);
  if (extra) value.extra = extra;
  return value;
}

/** The keys of a stored object that pgrotate does not own, or undefined when there are none. */
function keptKeysOf(json: Record<string, unknown>): KeptSecretKeys | undefined {
  let extra: KeptSecretKeys | undefined;
  for (const [key, v] of Object.entries(json)) {
    if (OWNED.has(key)) continue;
    extra ??= {};
    setOwn(extra, key, v);
  }
  return extra;
}

/** `obj[key] = v` as an own data property, so a stored key named "__proto__" stays a plain key. */
function setOwn(obj: Record<string, unknown>, key: string, v: unknown): void {
  Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
}
