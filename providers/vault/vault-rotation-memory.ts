// What one VaultProvider instance saw between the calls of a rotation, so its promote needs no
// reads: the current version its last getCurrent saw (the check-and-set value; a stale one is
// refused by Vault and costs a re-read, never a wrong write). No password is kept here: the
// value to promote comes from the caller, which holds it for the rotation's life only. An entry
// goes on promote and discard; entries of rotations that never get there (a failed step, a read
// with no rotation after it) are dropped by age and by count, so memory stays bounded.

/** Entries older than this are dropped: a promote after that reads the store instead. */
export const ROTATION_MEMORY_TTL_MS = 10 * 60_000;
/** At most this many secrets are remembered; the oldest goes first. */
export const ROTATION_MEMORY_MAX = 1000;

interface Entry {
  /** Latest version of the current secret at this instance's last getCurrent (0: none). */
  currentVersion: number;
  at: number;
}

/** Per-secret current versions one provider instance may reuse within a rotation; bounded by age and count. */
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
    const at = this.now();
    // (Re)inserted at the end, so the map stays in age order and the oldest entries lead it.
    this.entries.delete(secret);
    this.entries.set(secret, { currentVersion: version, at });
    for (const [key, old] of this.entries) {
      if (this.entries.size <= this.limits.max && at - old.at <= this.limits.ttlMs) break;
      this.entries.delete(key);
    }
  }

  /** Drop everything about `secret`. */
  forget(secret: string): void {
    this.entries.delete(secret);
  }

  /** Remove and return the remembered current version of `secret` (a promote uses it once). */
  take(secret: string): number | undefined {
    const e = this.entries.get(secret);
    this.entries.delete(secret);
    if (!e || this.now() - e.at > this.limits.ttlMs) return undefined;
    return e.currentVersion;
  }
}
