// Redaction of known secrets. Every password pgrotate generates, reads or is configured with is
// registered here first, and every log line and error message passes through `scrub`, so even a
// library error that echoes a value cannot leak it (invariant I4).

const MIN_SECRET_LENGTH = 4;
const SECRET_KEY_PATTERN = /(password|passwd|passphrase|token|authorization|cookie|verifier|apikey|accesskey|privatekey|clientsecret|secretid)$/i;

/** Holds the set of secret strings this process knows and removes them from text. */
export class Redactor {
  private readonly secrets = new Set<string>();
  private pattern: RegExp | null = null;

  /** Remember a secret value so it is scrubbed from all later output. */
  add(secret: string | undefined | null): void {
    if (!secret || secret.length < MIN_SECRET_LENGTH || this.secrets.has(secret)) return;
    this.secrets.add(secret);
    // Also scrub the forms a secret takes when a library serialises it.
    this.secrets.add(JSON.stringify(secret).slice(1, -1));
    this.secrets.add(encodeURIComponent(secret));
    this.pattern = null;
  }

  /** Forget a secret (after it is superseded) so the set does not grow without bound. */
  remove(secret: string | undefined | null): void {
    if (!secret) return;
    this.secrets.delete(secret);
    this.secrets.delete(JSON.stringify(secret).slice(1, -1));
    this.secrets.delete(encodeURIComponent(secret));
    this.pattern = null;
  }

  get size(): number {
    return this.secrets.size;
  }

  /** Replace every known secret in `text` with `[REDACTED]`. */
  scrub(text: string): string {
    if (this.secrets.size === 0) return text;
    if (!this.pattern) {
      const alternatives = [...this.secrets]
        .sort((a, b) => b.length - a.length)
        .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      this.pattern = new RegExp(alternatives.join('|'), 'g');
    }
    return text.replace(this.pattern, '[REDACTED]');
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
