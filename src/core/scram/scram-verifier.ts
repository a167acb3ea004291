import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

// SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL stores it in pg_authid.rolpassword:
//   SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
// Computing it here means `ALTER ROLE ... PASSWORD` carries only the verifier, never the
// plaintext, so statement logs and pg_stat_statements cannot capture the password.

const pbkdf2Async = promisify(pbkdf2);

export const DEFAULT_SCRAM_ITERATIONS = 4096;
const SALT_BYTES = 16;

export interface ScramKeys {
  saltedPassword: Buffer;
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** Verifiers we produce have exactly this shape; anything else is refused before it nears SQL. */
export const SCRAM_VERIFIER_PATTERN =
  /^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}:[A-Za-z0-9+/]+={0,2}$/;

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

/**
 * SASLprep of the password. For printable ASCII, the only input pgrotate generates, SASLprep is
 * the identity; other input is refused rather than risk a verifier that PostgreSQL computes
 * differently.
 */
function saslPrep(password: string): string {
  if (!/^[\x21-\x7e]*$/.test(password)) {
    throw new Error('SCRAM verifier: only printable ASCII passwords are supported');
  }
  return password;
}

/** Derive the SCRAM keys for a password, salt and iteration count. */
export async function deriveScramKeys(password: string, salt: Buffer, iterations: number): Promise<ScramKeys> {
  const saltedPassword = await pbkdf2Async(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = hmac(saltedPassword, 'Client Key');
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = hmac(saltedPassword, 'Server Key');
  return { saltedPassword, clientKey, storedKey, serverKey };
}

/** Compute the PostgreSQL SCRAM-SHA-256 verifier for a password, with a fresh random salt. */
export async function scramVerifier(
  password: string,
  iterations = DEFAULT_SCRAM_ITERATIONS,
  salt: Buffer = randomBytes(SALT_BYTES),
): Promise<string> {
  if (!Number.isInteger(iterations) || iterations < 1)
    throw new Error('SCRAM verifier: iterations must be a positive integer');
  const keys = await deriveScramKeys(password, salt, iterations);
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${keys.storedKey.toString('base64')}:${keys.serverKey.toString('base64')}`;
}
