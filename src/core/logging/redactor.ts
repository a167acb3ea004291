import { AsyncLocalStorage } from 'node:async_hooks';

// Redaction of known secrets. Every password pgrotate generates, reads or is configured with is
// registered here first, and every log line and error message passes through `scrub`, so even a
// library error that echoes a value cannot leak it (invariant I4).
//
// Lifetimes: a secret added inside a redaction scope (`scoped`, one per rotation) belongs to that
// scope and is forgotten when the last scope holding it ends, so a months-old worker does not keep
// every password it ever rotated (a heap dump would hand them all out). Scopes count references:
// two rotations that share a value keep it until both are done. A scope opened inside another
// hands its secrets to the outer one, which may still log about them. Secrets added outside any
// scope (configured env:/file: values, admin and provider credentials) are kept for the process.

const MIN_SECRET_LENGTH = 4;

/**
 * The secret as written, as inside a JSON string, and URL-encoded: as encodeURIComponent does and
 * with RFC 3986's sub-delimiters encoded too (the form secretTemplate puts in a connection URL).
 */
function forms(secret: string): string[] {
  const uri = encodeURIComponent(secret);
  const strict = uri.replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return [...new Set([secret, JSON.stringify(secret).slice(1, -1), uri, strict])].filter(
    (f) => f.length >= MIN_SECRET_LENGTH,
  );
}
/** The secrets one scope added (each counted once in the redactor's references). */
interface Scope {
  secrets: Set<string>;
  closed: boolean;
}

const SECRET_KEY_PATTERN =
  /(password|passwd|passphrase|token|authorization|cookie|verifier|apikey|accesskey|privatekey|clientsecret|secretid)$/i;

/**
 * Holds the set of secret strings this process knows and removes them from text. Secrets are
 * indexed by their first MIN_SECRET_LENGTH characters, so scrubbing costs O(text length) and
 * does not grow with the thousands of passwords a long-running worker has seen.
 */
export class Redactor {
  private readonly byPrefix = new Map<string, string[]>();
  /** How many known secrets produce each indexed form (one secret's URL form may be another secret). */
  private readonly formRefs = new Map<string, number>();
  /** Every known secret, with the number of open scopes holding it (0: kept for the process). */
  private readonly originals = new Map<string, number>();
  private readonly kept = new Set<string>();
  private readonly scopes = new AsyncLocalStorage<Scope>();

  /**
   * Remember a secret value so it is scrubbed from all later output: until the current redaction
   * scope ends, or for the life of the process when called outside any scope.
   */
  add(secret: string | undefined | null): void {
    const scope = this.scopes.getStore();
    if (!scope || scope.closed) {
      this.keep(secret);
      return;
    }
    if (!secret || secret.length < MIN_SECRET_LENGTH) return;
    if (scope.secrets.has(secret) && this.originals.has(secret)) return;
    // (A secret this scope holds may have been removed meanwhile; it is then counted afresh.)
    scope.secrets.add(secret);
    this.index(secret);
    this.originals.set(secret, (this.originals.get(secret) ?? 0) + 1);
  }

  /** Remember a secret for the life of the process, even inside a scope (credentials pgrotate keeps using). */
  keep(secret: string | undefined | null): void {
    if (!secret || secret.length < MIN_SECRET_LENGTH || this.kept.has(secret)) return;
    this.kept.add(secret);
    this.index(secret);
    if (!this.originals.has(secret)) this.originals.set(secret, 0);
  }

  /**
   * Run `fn` in a redaction scope: secrets it adds (directly or through anything it awaits) are
   * scrubbed while it runs and forgotten when it settles, unless another scope or the process
   * still holds them. Results and errors must be scrubbed before they leave `fn`.
   */
  async scoped<T>(fn: () => Promise<T>): Promise<T> {
    const scope: Scope = { secrets: new Set(), closed: false };
    try {
      return await this.scopes.run(scope, fn);
    } finally {
      scope.closed = true;
      const outer = this.scopes.getStore();
      for (const secret of scope.secrets) {
        if (outer && !outer.closed && !outer.secrets.has(secret)) {
          // The outer scope takes over this scope's reference.
          outer.secrets.add(secret);
          continue;
        }
        this.release(secret);
      }
      scope.secrets.clear();
    }
  }

  private release(secret: string): void {
    const refs = (this.originals.get(secret) ?? 0) - 1;
    if (refs > 0 || this.kept.has(secret)) {
      this.originals.set(secret, Math.max(0, refs));
      return;
    }
    this.forget(secret);
  }

  private index(secret: string): void {
    if (this.originals.has(secret)) return;
    // Also scrub the forms a secret takes when a library serialises it.
    for (const form of forms(secret)) {
      const refs = this.formRefs.get(form) ?? 0;
      this.formRefs.set(form, refs + 1);
      if (refs > 0) continue;
      const key = form.slice(0, MIN_SECRET_LENGTH);
      const bucket = this.byPrefix.get(key) ?? [];
      bucket.push(form);
      // Longest first, so a secret that extends another is removed whole.
      bucket.sort((a, b) => b.length - a.length);
      this.byPrefix.set(key, bucket);
    }
  }

  /** Forget a secret now, whoever holds it (a credential that was replaced). */
  remove(secret: string | undefined | null): void {
    if (!secret) return;
    this.kept.delete(secret);
    this.forget(secret);
  }

  private forget(secret: string): void {
    if (!this.originals.delete(secret)) return;
    for (const form of forms(secret)) {
      const refs = (this.formRefs.get(form) ?? 1) - 1;
      if (refs > 0) {
        this.formRefs.set(form, refs);
        continue;
      }
      this.formRefs.delete(form);
      const key = form.slice(0, MIN_SECRET_LENGTH);
      const bucket = (this.byPrefix.get(key) ?? []).filter((s) => s !== form);
      if (bucket.length) this.byPrefix.set(key, bucket);
      else this.byPrefix.delete(key);
    }
  }

  /** Is `secret` known right now? */
  has(secret: string): boolean {
    return this.originals.has(secret);
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
    for (let i = 0; i <= text.length - MIN_SECRET_LENGTH;) {
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
        out[k] =
          SECRET_KEY_PATTERN.test(k) && v !== null && v !== undefined && typeof v !== 'boolean'
            ? '[REDACTED]'
            : this.scrubValue(v, depth + 1);
      }
      return out;
    }
    if (typeof value === 'bigint') return value.toString();
    return value;
  }
}
