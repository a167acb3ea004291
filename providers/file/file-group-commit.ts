import { resolve as resolvePath } from 'node:path';
import { failpoint } from '../../src/core/rotation/failpoint.js';
import { acquireFileLock, releaseFileLock } from './file-lock.js';
import {
  abandonPrepared,
  commitPrepared,
  prepareJsonWrite,
  readJsonObject,
  type PreparedWrite,
} from './file-store-io.js';

// Group commit for the file provider. Every update of one store (stage, promote, discard) is queued;
// one writer per process takes all queued updates of distinct secrets, applies them to one fresh
// read of the two files under the cross-process lock, and writes each file at most once per
// phase. An update resolves only after the fsync + rename + directory fsync that covers it.
//
// The phases keep, for every secret, the crash order a single promote always had:
//  1. the sidecar (`<path>.pgrotate.json`): new pending values, discards, and the old current as
//     previous — while a promoted pending value is still there;
//  2. the main file (what applications read): the promoted values;
//  3. the sidecar again: the promoted pending values dropped.
// A crash between phases leaves every password PostgreSQL may accept readable as current or pending
// (I1), and a promote is idempotent, so the engine's resume finishes it. A stage or discard has
// succeeded once phase 1 is durable, a promote once phase 3 is; all settle after the lock is
// released. A secret appears at most once per batch, so its updates apply in the order they were
// requested, each in its own batch.

/** The two files of one store as one batch sees them; the updates' only way to change them. */
export class StoreBatch {
  private mainChanged = false;
  private sidecarChanged = false;
  private readonly dropAfterPromote = new Set<string>();

  constructor(
    private readonly main: Record<string, unknown>,
    private readonly pending: Record<string, unknown>,
    private readonly previous: Record<string, unknown>,
  ) {}

  /** The raw current entry of `secret`, undefined when absent. */
  current(secret: string): unknown {
    return own(this.main, secret);
  }

  /** The raw pending entry of `secret`, undefined when absent. */
  pendingOf(secret: string): unknown {
    return own(this.pending, secret);
  }

  /** Stage (phase 1). */
  setPending(secret: string, value: unknown): void {
    this.pending[secret] = value;
    this.sidecarChanged = true;
  }

  /** Discard a pending value that is not being promoted (phase 1). */
  deletePending(secret: string): void {
    delete this.pending[secret];
    this.sidecarChanged = true;
  }

  /** Promote: `oldCurrent` becomes previous (phase 1), `value` current (phase 2), pending goes (phase 3). */
  promote(secret: string, value: unknown, oldCurrent: unknown): void {
    if (oldCurrent !== undefined) {
      this.previous[secret] = oldCurrent;
      this.sidecarChanged = true;
    }
    this.main[secret] = value;
    this.mainChanged = true;
    this.dropAfterPromote.add(secret);
  }

  /** Drop a pending value that is already current (phase 3). */
  dropPromotedPending(secret: string): void {
    this.dropAfterPromote.add(secret);
  }

  /** The writes of this batch in commit order; phase 1 resolves stages and discards. */
  plan(): { phase1: unknown; phase2: unknown; phase3: unknown } {
    const phase1 = this.sidecarChanged ? { pending: this.pending, previous: this.previous } : undefined;
    const phase2 = this.mainChanged ? this.main : undefined;
    let phase3: unknown;
    if (this.dropAfterPromote.size > 0) {
      const rest = { ...this.pending };
      for (const s of this.dropAfterPromote) delete rest[s];
      phase3 = { pending: rest, previous: this.previous };
    }
    return { phase1, phase2, phase3 };
  }
}

interface Queued {
  secret: string;
  /** Whether the update is acknowledged after phase 1 (stage, discard) or only after phase 3 (promote). */
  late: boolean;
  lockTimeoutMs: number;
  apply: (batch: StoreBatch) => unknown;
  result?: unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** How each update of a batch ended, settled once the lock is released. */
type Outcomes = Map<Queued, { ok: true } | { ok: false; err: unknown }>;

/** The writer of one store (one main file) in this process. */
export class FileGroupCommit {
  private readonly queue: Queued[] = [];
  private running = false;
  /** Batches run and updates they carried (tests check that concurrent updates share batches). */
  readonly stats = { batches: 0, updates: 0 };
  readonly sidecarPath: string;
  readonly lockPath: string;

  constructor(readonly path: string) {
    this.sidecarPath = `${path}.pgrotate.json`;
    this.lockPath = `${path}.lock`;
  }

  /**
   * Queue an update of `secret`; resolves with what `apply` returned once it is durable. `apply`
   * must check before it changes anything: when it throws, the update is refused on its own.
   */
  update<T>(
    secret: string,
    opts: { late: boolean; lockTimeoutMs: number },
    apply: (batch: StoreBatch) => T,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        secret,
        late: opts.late,
        lockTimeoutMs: opts.lockTimeoutMs,
        apply,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      // Let updates asked for in the same tick join the first batch too.
      await Promise.resolve();
      while (this.queue.length > 0) await this.runBatch(this.take());
    } finally {
      this.running = false;
    }
  }

  /** All queued updates of distinct secrets, oldest first; later updates of a taken secret wait. */
  private take(): Queued[] {
    const seen = new Set<string>();
    const batch: Queued[] = [];
    const rest: Queued[] = [];
    for (const q of this.queue) {
      if (seen.has(q.secret)) rest.push(q);
      else {
        seen.add(q.secret);
        batch.push(q);
      }
    }
    this.queue.splice(0, this.queue.length, ...rest);
    return batch;
  }

  private async runBatch(batch: Queued[]): Promise<void> {
    this.stats.batches++;
    this.stats.updates += batch.length;
    // Settled only after the lock is released, so that a caller that goes on never finds it held.
    const outcomes: Outcomes = new Map();
    const pending: { writes: PreparedWrite[] } = { writes: [] };
    let locked = false;
    try {
      await acquireFileLock(
        this.lockPath,
        [this.path, this.sidecarPath],
        Math.max(...batch.map((q) => q.lockTimeoutMs)),
      );
      locked = true;
      const [main, side] = await Promise.all([readJsonObject(this.path), readJsonObject(this.sidecarPath)]);
      const store = new StoreBatch(main, record(side.pending), record(side.previous));
      for (const q of batch) {
        try {
          q.result = q.apply(store);
        } catch (err) {
          outcomes.set(q, { ok: false, err });
        }
      }
      await this.commitPhases(batch, store, outcomes, pending);
      for (const q of batch) if (!outcomes.has(q)) outcomes.set(q, { ok: true });
    } catch (err) {
      for (const q of batch) if (!outcomes.has(q)) outcomes.set(q, { ok: false, err });
    } finally {
      await abandonPrepared(pending.writes);
      if (locked) await releaseFileLock(this.lockPath);
    }
    for (const q of batch) {
      const o = outcomes.get(q);
      if (o?.ok) q.resolve(q.result);
      else q.reject(o?.err);
    }
  }

  /**
   * Write the batch's plan: sidecar stage (phase 1), main file (2), sidecar cleanup (3). The
   * updates that are not `late` succeed once phase 1 is durable. `pending.writes` holds the
   * prepared temp files not yet renamed, for the caller to abandon.
   */
  private async commitPhases(
    batch: Queued[],
    store: StoreBatch,
    outcomes: Outcomes,
    pending: { writes: PreparedWrite[] },
  ): Promise<void> {
    const plan = store.plan();
    // The temp files of all phases are written and fsynced at once; only the renames are ordered.
    const settled = await Promise.allSettled([
      plan.phase1 === undefined ? null : prepareJsonWrite(this.sidecarPath, plan.phase1),
      plan.phase2 === undefined ? null : prepareJsonWrite(this.path, plan.phase2),
      plan.phase3 === undefined ? null : prepareJsonWrite(this.sidecarPath, plan.phase3),
    ]);
    pending.writes = settled.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const [w1, w2, w3] = settled.map((r) => (r as PromiseFulfilledResult<PreparedWrite | null>).value);
    if (w1) await commitPrepared(w1);
    pending.writes = pending.writes.filter((w) => w !== w1);
    // Stages and discards are durable now, whatever happens to the promotes' writes.
    for (const q of batch) if (!q.late && !outcomes.has(q)) outcomes.set(q, { ok: true });
    // Test-only crash points between the phases (PGROTATE_FAILPOINT, keyed by the first secret).
    await failpoint('file-commit-after-sidecar', batch[0]?.secret ?? '');
    for (const w of [w2, w3]) {
      if (!w) continue;
      await commitPrepared(w);
      pending.writes = pending.writes.filter((x) => x !== w);
      if (w === w2) await failpoint('file-commit-after-main', batch[0]?.secret ?? '');
    }
  }
}

const writers = new Map<string, FileGroupCommit>();

/** The one writer of the store at `path` in this process (shared by every provider instance on it). */
export function groupCommitFor(path: string): FileGroupCommit {
  const key = resolvePath(path);
  let w = writers.get(key);
  if (!w) {
    w = new FileGroupCommit(path);
    writers.set(key, w);
  }
  return w;
}

function own(map: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(map, key) ? map[key] : undefined;
}

function record(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? { ...(v as Record<string, unknown>) } : {};
}
