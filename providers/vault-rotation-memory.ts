import type { SecretValue } from '../src/core/provider/secret-provider.js';

// What one VaultProvider instance itself saw and wrote for a secret between the calls of a
// rotation, so its promote needs no reads: the current version its last getCurrent saw (the
// check-and-set value; a stale one is refused by Vault and costs a re-read, never a wrong
// write) and the pending value it staged (only after the write succeeded, so it is exactly what
// the store holds). An entry goes on promote and discard; entries of rotations that never get
// there (a failed step, a read with no rotation after it) are dropped by age and by count, so
// memory, and the staged passwords in it, stay bounded by the rotations in flight.

/** Entries older than this are dropped: a promote after that reads the store instead. */
export const ROTATION_MEMORY_TTL_MS = 10 * 60_000;
/** At most this many secrets are remembered; the oldest goes first. */
export const ROTATION_MEMORY_MAX = 1000;

export interface Remembered {
  /** Latest version of the current secret at this instance's last getCurrent (0: none). */
  currentVersion?: number;
  /** The payload this instance staged, or found staged for the same rotation. */
  staged?: SecretValue;
}

interface Entry extends Remembered {
  at: number;
}

/** Per-secret facts one provider instance may reuse within a rotation; bounded by age and count. */
export class RotationMemory {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly limits: { ttlMs: number; max: number } = {
      ttlMs: ROTATION_MEMORY_TTL_MS,
      max: ROTATION_MEMORY_MAX,
    },
    private readonly now: () => number = Date.now,
  ) {}

  /** Number of secrets remembered now. */
  get size(): number {
    return this.entries.size;
  }

  /** getCurrent saw `version` as the latest version of `secret`. */
  sawCurrent(secret: string, version: number): void {
    this.put(secret, { ...this.live(secret), currentVersion: version });
  }

  /** `value` is what the store now holds as the pending value of `secret`. */
  staged(secret: string, value: SecretValue): void {
    this.put(secret, { ...this.live(secret), staged: value });
  }

  /** The pending value may differ from what was remembered (a failed or refused write). */
  unstage(secret: string): void {
    const e = this.live(secret);
    if (!e) return;
    const { currentVersion } = e;
    if (currentVersion === undefined) this.entries.delete(secret);
    else this.put(secret, { currentVersion });
  }

  /** Drop everything about `secret`. */
  forget(secret: string): void {
    this.entries.delete(secret);
  }

  /** Remove and return what is remembered of `secret` (a promote uses it once). */
  take(secret: string): Remembered | undefined {
    const e = this.live(secret);
    this.entries.delete(secret);
    if (!e) return undefined;
    const out: Remembered = {};
    if (e.currentVersion !== undefined) out.currentVersion = e.currentVersion;
    if (e.staged) out.staged = e.staged;
    return out;
  }

  private live(secret: string): Remembered | undefined {
    const e = this.entries.get(secret);
    if (!e) return undefined;
    if (this.now() - e.at > this.limits.ttlMs) {
      this.entries.delete(secret);
      return undefined;
    }
    return e;
  }

  /** (Re)insert at the end, so the map stays in age order and the oldest entries lead it. */
  private put(secret: string, r: Remembered): void {
    const at = this.now();
    this.entries.delete(secret);
    const e: Entry = { at };
    if (r.currentVersion !== undefined) e.currentVersion = r.currentVersion;
    if (r.staged) e.staged = r.staged;
    this.entries.set(secret, e);
    for (const [key, old] of this.entries) {
      if (this.entries.size <= this.limits.max && at - old.at <= this.limits.ttlMs) break;
      this.entries.delete(key);
    }
  }
}
