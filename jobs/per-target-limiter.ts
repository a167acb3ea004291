import pg from 'pg';
import { messageOf } from '../src/core/errors.js';
import type { Logger } from '../src/core/logging/logger.js';

// At most `perTarget` rotations per target database at once, across every worker process and
// `run-due`. Each of a target's slots is a session advisory lock in the state database; a
// process holds the slots of its running rotations on one dedicated connection, so a crashed
// process frees its slots with its connection. Within the process the held slots are tracked
// too, because advisory locks are re-entrant within a session.

export interface TargetSlot {
  release(): Promise<void>;
}

export interface PerTargetLimiterOptions {
  connection: pg.ClientConfig;
  schema: string;
  perTarget: number;
  log: Logger;
  /** Delay between attempts when every slot is taken. */
  pollMs?: number;
}

export class PerTargetLimiter {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private readonly held = new Map<string, Set<number>>();
  private closed = false;
  /** Queries on the one connection run one after another. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: PerTargetLimiterOptions) {}

  /** Wait for a free slot of `target`; rejects if `signal` aborts first. */
  async acquire(target: string, signal?: AbortSignal): Promise<TargetSlot> {
    for (;;) {
      if (signal?.aborted) throw new Error(`stopped while waiting for a rotation slot of target ${target}`);
      const slot = await this.tryAcquire(target);
      if (slot) return slot;
      const poll = this.opts.pollMs ?? 200;
      await new Promise((r) => setTimeout(r, poll / 2 + Math.random() * poll));
    }
  }

  /** A free slot of `target`, or null when all are taken. */
  async tryAcquire(target: string): Promise<TargetSlot | null> {
    const mine = this.held.get(target) ?? new Set<number>();
    this.held.set(target, mine);
    for (let i = 0; i < this.opts.perTarget; i++) {
      if (mine.has(i)) continue;
      // Reserve locally first: two rotations of this process must not both take slot i.
      mine.add(i);
      let got: boolean;
      try {
        const res = await this.serial(async () =>
          (await this.connection()).query<{ ok: boolean }>(
            'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok',
            [this.key(target, i)],
          ),
        );
        got = res.rows[0]?.ok === true;
      } catch (err) {
        mine.delete(i);
        throw err;
      }
      if (got) return { release: () => this.release(target, i) };
      mine.delete(i);
    }
    return null;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }

  private async release(target: string, i: number): Promise<void> {
    try {
      await this.serial(async () =>
        this.client?.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [this.key(target, i)]),
      );
    } catch (err) {
      // A dead connection already released every lock it held.
      this.opts.log.warn({ target, error: messageOf(err) }, 'could not release a rotation slot explicitly');
    } finally {
      this.held.get(target)?.delete(i);
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private key(target: string, i: number): string {
    return `pgrotate:${this.opts.schema}:target-slot:${target}:${i}`;
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    if (this.closed) throw new Error('limiter closed');
    this.connecting ??= (async () => {
      const c = new pg.Client(this.opts.connection);
      c.on('error', (err) => {
        // Its locks are gone with it; later acquisitions reconnect. Held slots stay tracked
        // locally until released, so this process still never exceeds its own share.
        this.opts.log.warn({ error: messageOf(err) }, 'rotation slot connection lost');
        if (this.client === c) this.client = null;
      });
      await c.connect();
      this.client = c;
      return c;
    })().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }
}
