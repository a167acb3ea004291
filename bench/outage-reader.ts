import { Agent, request } from 'node:http';
import pg from 'pg';
import { outagesOf, type Attempt } from './outage-window.js';

// The benchmark's application, in a child process of its own (so its CPU is not counted as
// pgrotate's): for each sampled account one loop reads what the store calls current and logs in
// with it, without pause. Started by bench/outage-reader-run.ts over IPC; answers with every
// loop's attempts once told to stop, or by itself once every account has been seen to rotate.

/** Where the reader reads current values: pgrotate's KV v2 secrets, or OpenBao's static-creds. */
export type ReaderSource =
  | { kind: 'kv'; address: string; token: string; mount: string; names: string[] }
  | { kind: 'static-creds'; address: string; token: string; mount: string; names: string[] };

export interface ReaderSpec {
  source: ReaderSource;
  pg: { host: string; port: number; database: string };
  /** Stop each loop once its account's value changed and logged in (a single-user run). */
  untilRotated: boolean;
}

export type ReaderMessage =
  { type: 'ready' } | { type: 'result'; attempts: Attempt[][]; reads: number } | { type: 'error'; message: string };

const agent = new Agent({ keepAlive: true });

function getJson(
  address: string,
  path: string,
  token: string,
): Promise<{ status: number; body: Record<string, unknown> | null }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${address}/v1/${path}`,
      { agent, headers: { 'X-Vault-Token': token }, timeout: 5000 },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : null });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** The account's current username and password, or null when the store has none yet. */
async function readCurrent(source: ReaderSource, name: string): Promise<{ username: string; password: string } | null> {
  const path =
    source.kind === 'kv'
      ? `${source.mount}/data/${name.split('/').map(encodeURIComponent).join('/')}`
      : `${source.mount}/static-creds/${encodeURIComponent(name)}`;
  const res = await getJson(source.address, path, source.token);
  if (res.status !== 200 || !res.body) return null;
  const data = res.body.data as Record<string, unknown> | undefined;
  const value = (source.kind === 'kv' ? (data?.data as Record<string, unknown> | undefined) : data) ?? {};
  return typeof value.username === 'string' && typeof value.password === 'string'
    ? { username: value.username, password: value.password }
    : null;
}

async function login(spec: ReaderSpec, user: string, password: string): Promise<boolean> {
  const c = new pg.Client({
    ...spec.pg,
    user,
    password,
    application_name: 'bench-reader',
    connectionTimeoutMillis: 5000,
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.end().catch(() => undefined);
    return true;
  } catch {
    return false;
  }
}

/** Run the loops until stopped (or, with untilRotated, until every account rotated). */
async function run(spec: ReaderSpec, send: (m: ReaderMessage) => void, stopped: () => boolean): Promise<void> {
  const attempts: Attempt[][] = spec.source.names.map(() => []);
  let reads = 0;
  let readyLoops = 0;
  await Promise.all(
    spec.source.names.map(async (name, i) => {
      const mine = attempts[i] as Attempt[];
      let first: string | null = null;
      let ready = false;
      while (!stopped()) {
        const readAt = Date.now();
        const cur = await readCurrent(spec.source, name).catch(() => null);
        reads++;
        if (!cur) {
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        const ok = await login(spec, cur.username, cur.password);
        mine.push({ readAt, password: cur.password, ok });
        if (ok && !ready) {
          ready = true;
          first = cur.password;
          if (++readyLoops === spec.source.names.length) send({ type: 'ready' });
        }
        if (spec.untilRotated && ok && first !== null && cur.password !== first && outagesOf(mine).rotations > 0) break;
      }
    }),
  );
  send({ type: 'result', attempts, reads });
}

// Child-process entry: the spec arrives as the first IPC message (it holds a token: never argv).
if (process.send) {
  let stop = false;
  const send = (m: ReaderMessage) => process.send?.(m);
  process.on('message', (m: { type: string; spec?: ReaderSpec }) => {
    if (m.type === 'stop') stop = true;
    if (m.type === 'start' && m.spec) {
      run(m.spec, send, () => stop)
        .catch((err: unknown) => send({ type: 'error', message: err instanceof Error ? err.message : String(err) }))
        .finally(() => {
          agent.destroy();
          process.disconnect();
        });
    }
  });
}
