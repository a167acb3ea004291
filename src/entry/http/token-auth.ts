import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiAction, HttpConfig } from '../../core/config/config-schema.js';
import type { Redactor } from '../../core/logging/redactor.js';

// Bearer tokens from the config, kept only as SHA-256 digests. A presented token is hashed and
// compared with every stored digest in constant time, so neither the comparison nor which token
// matched leaks through timing, and the plaintext tokens are not kept around in memory.

export type AuthResult =
  | { ok: true; name: string; actions: ReadonlySet<ApiAction> }
  | { ok: false; reason: 'missing' | 'malformed' | 'unknown' };

interface StoredToken {
  name: string;
  digest: Buffer;
  actions: ReadonlySet<ApiAction>;
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Checks `Authorization: Bearer` headers against the configured tokens. */
export class TokenAuth {
  private readonly tokens: StoredToken[];

  constructor(tokens: HttpConfig['tokens'], redactor: Redactor) {
    this.tokens = tokens.map((t) => {
      // A token written literally in the config must still never reach a log line.
      redactor.add(t.token);
      return { name: t.name, digest: digest(t.token), actions: new Set(t.actions) };
    });
  }

  /** Who the header belongs to, or why it is refused. */
  authenticate(header: string | undefined): AuthResult {
    if (!header) return { ok: false, reason: 'missing' };
    // The scheme name is case-insensitive (RFC 9110 §11.1): bearer, Bearer and BEARER all work.
    const m = /^Bearer +([\x21-\x7e]{1,1024})$/i.exec(header.trim());
    if (!m) return { ok: false, reason: 'malformed' };
    const presented = digest(m[1] as string);
    let match: StoredToken | null = null;
    for (const t of this.tokens) {
      // Every digest is compared, whether or not an earlier one matched.
      if (timingSafeEqual(presented, t.digest) && !match) match = t;
    }
    return match ? { ok: true, name: match.name, actions: match.actions } : { ok: false, reason: 'unknown' };
  }
}
