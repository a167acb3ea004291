import pg from 'pg';
import type { ChaosAccount, LoginTarget } from './chaos-invariants.js';
import type { ProviderSampler } from './provider-sampler.js';

// The chaos run's application: it reads what each account's provider calls current, as an
// application would, and logs in with it, over and over. Invariant I1 as applications see it:
// the current credential logs in, except inside a single-user rotation's apply→promote window
// (the old password stops at ALTER ROLE, the new one becomes current at promote). Only a
// password refusal (28P01) counts; pg_hba rejects, NOLOGIN (28000), connection limits (53300) and
// restarts are the harness's own faults. The reader also measures how long those windows
// really were, as applications saw them.

/** One refused login: the value was read at `readAt`, refused at `loginAt` (ms since epoch). */
export interface Refusal {
  account: string;
  role: string;
  rotationId: string | null;
  readAt: number;
  loginAt: number;
}

/** A span in which the account's current credential may be refused. */
export interface Window {
  start: number;
  end: number;
}

export interface CurrentReader {
  /** Stop reading (resolves when the loop has ended). */
  stop(): Promise<void>;
  /** The harness itself makes the account refuse passwords (an expired role) from now until `lift`. */
  exclude(account: string): { lift(): void };
  /** Refusals recorded since the last call, removed from the reader. */
  drain(): Refusal[];
  readonly stats: { reads: number; logins: number; refused: number; excluded: number };
  /** Outages applications saw (ms): from a refused login to the next accepted one, per account. */
  readonly outagesMs: number[];
}

/** Start reading every account's current value and logging in with it, one account at a time. */
export function startCurrentReader(opts: {
  target: LoginTarget;
  accounts: ChaosAccount[];
  sampler: ProviderSampler;
  pauseMs: number;
}): CurrentReader {
  const refusals: Refusal[] = [];
  const exclusions = new Map<string, Array<{ from: number; to: number }>>();
  const stats = { reads: 0, logins: 0, refused: 0, excluded: 0 };
  const outagesMs: number[] = [];
  const outageSince = new Map<string, number>();
  let running = true;
  const excluded = (account: string, from: number, to: number) =>
    (exclusions.get(account) ?? []).some((e) => e.from <= to && from <= e.to);

  const loop = (async () => {
    while (running) {
      for (const a of opts.accounts) {
        if (!running) break;
        // Paced per account, whatever the answer (a refused connection comes back at once).
        await sleep(opts.pauseMs);
        const readAt = Date.now();
        const cur = await opts.sampler.current(a).catch(() => null);
        stats.reads++;
        if (!cur) continue;
        const code = await login(opts.target, cur.username, cur.password);
        const loginAt = Date.now();
        stats.logins++;
        if (code === 'ok') {
          const since = outageSince.get(a.name);
          if (since !== undefined) outagesMs.push(loginAt - since);
          outageSince.delete(a.name);
        }
        if (code !== '28P01') continue;
        if (excluded(a.name, readAt, loginAt)) {
          stats.excluded++;
          outageSince.delete(a.name);
          continue;
        }
        stats.refused++;
        if (!outageSince.has(a.name)) outageSince.set(a.name, loginAt);
        refusals.push({ account: a.name, role: cur.username, rotationId: cur.rotationId ?? null, readAt, loginAt });
      }
    }
  })();

  return {
    stats,
    outagesMs,
    async stop() {
      running = false;
      await loop;
    },
    exclude(account) {
      const span = { from: Date.now(), to: Number.POSITIVE_INFINITY };
      const list = exclusions.get(account) ?? [];
      list.push(span);
      exclusions.set(account, list);
      // A login in flight when the harness heals the role may still be refused: a short margin.
      return { lift: () => (span.to = Date.now() + 500) };
    },
    drain() {
      return refusals.splice(0, refusals.length);
    },
  };
}

/** The refusals no window explains (a 250 ms margin for the two clocks' reads). */
export function unexplained(refusals: Refusal[], windows: Map<string, Window[]>): Refusal[] {
  const margin = 250;
  return refusals.filter(
    (r) => !(windows.get(r.account) ?? []).some((w) => r.readAt <= w.end + margin && w.start - margin <= r.loginAt),
  );
}

/**
 * Each rotation's window from the state database: single-user from its start to its promote
 * (or its end, if it never promoted: a rollback, a failure), open while it runs; an alternating
 * rotation only its promote instant, which a read of the old value just before promote followed
 * by a login after the old role expired (offboarding expires it at once) spans.
 * Also returns the measured apply→promote spans (ms) of finished single-user rotations.
 */
export async function rotationWindows(
  state: pg.ClientConfig,
  schema: string,
): Promise<{ windows: Map<string, Window[]>; applyToPromoteMs: number[] }> {
  const c = new pg.Client({ ...state, application_name: 'chaos-check' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const rows = (
      await c.query<{
        account: string;
        strategy: string;
        started: Date;
        finished: Date | null;
        applied: Date | null;
        promoted: Date | null;
      }>(
        `SELECT r.account, r.strategy, r.started_at AS started, r.finished_at AS finished,
                (SELECT min(e.at) FROM "${schema}".audit_events e WHERE e.rotation_id = r.id AND e.kind = 'rotation.applied') AS applied,
                (SELECT min(e.at) FROM "${schema}".audit_events e WHERE e.rotation_id = r.id AND e.kind = 'rotation.promoted') AS promoted
           FROM "${schema}".rotations r`,
      )
    ).rows;
    const windows = new Map<string, Window[]>();
    const applyToPromoteMs: number[] = [];
    for (const r of rows) {
      const list = windows.get(r.account) ?? [];
      if (r.strategy === 'single-user') {
        const end = r.promoted ?? r.finished;
        list.push({ start: r.started.getTime(), end: end ? end.getTime() : Number.POSITIVE_INFINITY });
      } else if (r.promoted) {
        // The current role of a pair always logs in; only a read just before promote followed by
        // a login after the old role expired (offboarding expires it at once) can be refused.
        list.push({ start: r.promoted.getTime(), end: r.promoted.getTime() });
      }
      windows.set(r.account, list);
      if (r.strategy === 'single-user' && r.applied && r.promoted)
        applyToPromoteMs.push(r.promoted.getTime() - r.applied.getTime());
    }
    return { windows, applyToPromoteMs };
  } finally {
    await c.end();
  }
}

/** The SQLSTATE of a login attempt ('ok' when it got a session). */
async function login(target: LoginTarget, user: string, password: string): Promise<string> {
  const c = new pg.Client({
    ...target,
    user,
    password,
    connectionTimeoutMillis: 5000,
    application_name: 'chaos-reader',
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.end().catch(() => undefined);
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? 'error';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
