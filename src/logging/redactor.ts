// Redaction of known secrets. Every password pgrotate generates, reads or is configured with is
// registered here first, and every log line and error message passes through `scrub`, so even a
// library error that echoes a value cannot leak it (invariant I4).

const MIN_SECRET_LENGTH = 4;

/** The secret as written, as inside a JSON string, and URL-encoded. */
function forms(secret: string): string[] {
  return [...new Set([secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)])].filter((f) => f.length >= MIN_SECRET_LENGTH);
}
const SECRET_KEY_PATTERN = /(password|passwd|passphrase|token|authorization|cookie|verifier|apikey|accesskey|privatekey|clientsecret|secretid)$/i;

/**
 * Holds the set of secret strings this process knows and removes them from text. Secrets are
 * indexed by their first MIN_SECRET_LENGTH characters, so scrubbing costs O(text length) and
 * does not grow with the thousands of passwords a long-running worker has seen.
 */
export class Redactor {
  private readonly byPrefix = new Map<string, string[]>();
  private readonly originals = new Set<string>();

  /** Remember a secret value so it is scrubbed from all later output. */
  add(secret: string | undefined | null): void {
    if (!secret || secret.length < MIN_SECRET_LENGTH || this.originals.has(secret)) return;
    this.originals.add(secret);
    // Also scrub the forms a secret takes when a library serialises it.
    for (const form of forms(secret)) {
      const key = form.slice(0, MIN_SECRET_LENGTH);
      const bucket = this.byPrefix.get(key) ?? [];
      if (!bucket.includes(form)) {
        bucket.push(form);
        // Longest first, so a secret that extends another is removed whole.
        bucket.sort((a, b) => b.length - a.length);
      }
      this.byPrefix.set(key, bucket);
    }
  }

  /** Forget a secret so the set does not grow without bound. */
  remove(secret: string | undefined | null): void {
    if (!secret || !this.originals.delete(secret)) return;
    for (const form of forms(secret)) {
      const key = form.slice(0, MIN_SECRET_LENGTH);
      const bucket = (this.byPrefix.get(key) ?? []).filter((s) => s !== form);
      if (bucket.length) this.byPrefix.set(key, bucket);
      else this.byPrefix.delete(key);
    }
  }

  /** How many secrets are known. */
  get size(): number {
    return this.originals.size;
  }

  /** Replace every known secret in `text` with `[REDACTED]`. */
  scrub(text: string): string {
    if (this.byPrefix.size === 0 || text.length < MIN_SECRET_LENGTH) return text;
    let out = '';
    let copied = 0;
    for (let i = 0; i <= text.length - MIN_SECRET_LENGTH; ) {
      const bucket = this.byPrefix.get(text.slice(i, i + MIN_SECRET_LENGTH));
      const hit = bucket?.find((s) => text.startsWith(s, i));
      if (hit) {
        out += `${text.slice(copied, i)}[REDACTED]`;
        i += hit.length;
        copied = i;
      } else {
        i++;
      }
    }
    return copied === 0 ? text : out + text.slice(copied);
  }

  /**
   * Deep-copy a value for logging with secret-named keys masked and known secrets scrubbed.
   * Errors keep their code and `cause` chain (each scrubbed); binary data is reduced to its size,
   * because bytes printed as numbers would carry a secret past the text scrubber.
   */
  scrubValue(value: unknown, depth = 0): unknown {
    if (depth > 8) return '[…]';
    if (typeof value === 'string') return this.scrub(value);
    if (value instanceof Error) {
      const out: Record<string, unknown> = { type: value.name, message: this.scrub(value.message) };
      const code = (value as { code?: unknown }).code;
      if (typeof code === 'string' || typeof code === 'number') out.code = code;
      if (value.cause !== undefined) out.cause = this.scrubValue(value.cause, depth + 1);
      if (value instanceof AggregateError) out.errors = this.scrubValue(value.errors, depth + 1);
      return out;
    }
    if (value instanceof Date) return Number.isFinite(value.getTime()) ? value.toISOString() : String(value);
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[${value.byteLength} bytes]`;
    if (Array.isArray(value)) return value.map((v) => this.scrubValue(v, depth + 1));
    if (value instanceof Map) return this.scrubValue(Object.fromEntries(value), depth);
    if (value instanceof Set) return this.scrubValue([...value], depth);
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        // Whatever sits under a secret-named key is masked, whatever its type.
        out[k] = SECRET_KEY_PATTERN.test(k) && v !== null && v !== undefined && typeof v !== 'boolean' ? '[REDACTED]' : this.scrubValue(v, depth + 1);
      }
      return out;
    }
    if (typeof value === 'bigint') return value.toString();
    return value;
  }
}
