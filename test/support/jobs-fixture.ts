import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { CLI, type PgFixture } from './pg-fixture.js';
import type { RedisServerInfo } from './redis-server.js';

// Helpers for the queue and scheduler tests: configs with queue/limits/groups, long-running
// `pgrotate worker` child processes, and reads of the state database's audit trail.

export type Backend = 'postgres' | 'redis';

/** Write a config via the fixture, then add top-level keys (queue, limits, groups). */
export function writeJobsConfig(
  fx: PgFixture,
  parts: Parameters<PgFixture['writeConfig']>[0],
  extra: Record<string, unknown>,
): { path: string; env: NodeJS.ProcessEnv } {
  const written = fx.writeConfig(parts);
  const config = JSON.parse(readFileSync(written.path, 'utf8')) as Record<string, unknown>;
  writeFileSync(written.path, JSON.stringify({ ...config, ...extra }, null, 2), { mode: 0o600 });
  return written;
}

/** Queue settings for tests: fast ticks, short locks and backoff. */
export function testQueue(
  backend: Backend,
  redis?: RedisServerInfo,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    backend,
    ...(backend === 'redis' && redis ? { redis: { url: `redis://${redis.host}:${redis.port}` } } : {}),
    tickInterval: '1s',
    lockDuration: '3s',
    backoff: '1s',
    backoffCap: '2s',
    attempts: 3,
    cooldown: '1h',
    shutdownTimeout: '10s',
    ...overrides,
  };
}

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Start `pgrotate --config PATH worker` as a child process. */
export function startWorker(fx: PgFixture, configPath: string, env: NodeJS.ProcessEnv): WorkerProcess {
  const child = spawn(process.execPath, [CLI, '--config', configPath, 'worker'], {
    env,
    cwd: fx.dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    output: () => out,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A client of the fixture's state database (as the rotator, its owner). */
export async function stateClient(fx: PgFixture): Promise<pg.Client> {
  return fx.rotatorClient(fx.stateDb);
}

/** Count of audit events of `kind` per account. */
export async function auditCounts(fx: PgFixture, kind: string): Promise<Map<string, number>> {
  const c = await stateClient(fx);
  try {
    // Before the first process migrated the state database there is no table: no events yet.
    const res = await c
      .query<{ account: string; n: string }>(
        'SELECT account, count(*) AS n FROM pgrotate.audit_events WHERE kind = $1 GROUP BY account',
        [kind],
      )
      .catch((err: { code?: string }) => {
        if (err.code === '42P01') return { rows: [] };
        throw err;
      });
    return new Map(res.rows.map((r) => [r.account, Number(r.n)]));
  } finally {
    await c.end();
  }
}

/** Make accounts due now (all at once). */
export async function makeDue(fx: PgFixture, accounts: string[]): Promise<void> {
  const c = await stateClient(fx);
  try {
    await c.query("UPDATE pgrotate.accounts SET next_due_at = now() - interval '1 second' WHERE name = ANY($1)", [
      accounts,
    ]);
  } finally {
    await c.end();
  }
}

/** Poll until `cond` holds or fail with `what`. */
export async function eventually(
  cond: () => Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
  everyMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
}

/** Wait until the state DB has the accounts (the worker synced them). */
export async function waitForAccounts(fx: PgFixture, n: number): Promise<void> {
  await eventually(async () => {
    const c = await stateClient(fx);
    try {
      const r = await c
        .query<{ n: string }>('SELECT count(*) AS n FROM pgrotate.accounts')
        .catch(() => ({ rows: [{ n: '0' }] }));
      return Number(r.rows[0]?.n) >= n;
    } finally {
      await c.end();
    }
  }, `${n} accounts synced`);
}
