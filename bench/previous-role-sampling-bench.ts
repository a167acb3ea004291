import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pg from 'pg';
import { syncAccounts } from '../jobs/account-sync.js';
import { createApp } from '../src/app/app-context.js';
import { parseConfigText } from '../src/app/load-config.js';
import { createLogger } from '../src/core/logging/logger.js';
import { Redactor } from '../src/core/logging/redactor.js';
import { freePort } from '../src/core/net/free-port.js';
import { ROLE_SESSIONS_SQL } from '../src/core/pg/role-sessions.js';
import { scramVerifier } from '../src/core/scram/scram-verifier.js';
import { createPreviousRoleUsage } from '../src/services/usage/previous-role-usage.js';
import { startPgServer, stopPgServer } from '../test/support/pg-server.js';

// `npm run bench:sampling`: the previous-role usage sampling (issue 27) with 1,000 alternating
// accounts in grace on one target of a PostgreSQL 15 of its own, SESSIONS sessions held open as
// previous roles. Measures ROLE_SESSIONS_SQL (the one statement per target per tick) and the whole
// sampling pass of a tick (state read, the statement, storing 1,000 samples in one statement,
// acting), median/p95 over RUNS runs; for comparison, one statement per account.
//
//   npm run bench:sampling            # BENCH_ACCOUNTS=1000 BENCH_SESSIONS=200 BENCH_RUNS=50

const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 1_000);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 200);
const RUNS = Number(process.env.BENCH_RUNS ?? 50);
const PASSWORD = 'bench-previous-role-password';

function stats(ms: number[]): { median: number; p95: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => Number((s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0).toFixed(2));
  return { median: at(0.5), p95: at(0.95), max: Number((s[s.length - 1] ?? 0).toFixed(2)) };
}

async function timed(runs: number, fn: () => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return ms;
}

async function main(): Promise<void> {
  const server = startPgServer({
    label: 'bench-sampling',
    binDir: '/usr/lib/postgresql/15/bin',
    port: await freePort(),
    settings: { max_connections: String(SESSIONS + 50) },
  });
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-bench-sampling-'));
  const held: pg.Client[] = [];
  const connection = { host: server.host, port: server.port, user: server.superuser, password: server.superPassword };
  try {
    const su = new pg.Client({ ...connection, database: 'postgres' });
    await su.connect();
    await su.query('CREATE DATABASE bench_state');
    await su.query('CREATE DATABASE bench_target');
    // Both roles of each pair; the previous ones (_b) log in with one shared password.
    const verifier = await scramVerifier(PASSWORD);
    const ddl: string[] = [];
    for (let i = 0; i < ACCOUNTS; i++)
      ddl.push(`CREATE ROLE alt_${i}_a LOGIN`, `CREATE ROLE alt_${i}_b LOGIN PASSWORD '${verifier}'`);
    await su.query(ddl.join(';'));
    await su.end();

    const env = { ...process.env, BENCH_PG_PASSWORD: server.superPassword };
    const config = {
      state: {
        url: `postgres://${server.superuser}@${server.host}:${server.port}/bench_state`,
        password: 'env:BENCH_PG_PASSWORD',
      },
      providers: { local: { type: 'file', path: join(dir, 'secrets.json') } },
      targets: {
        main: {
          host: server.host,
          port: server.port,
          database: 'bench_target',
          sslmode: 'disable',
          admin: { username: server.superuser, password: 'env:BENCH_PG_PASSWORD' },
        },
      },
      defaults: { schedule: { every: '90d' } },
      accounts: Array.from({ length: ACCOUNTS }, (_, i) => ({
        name: `alt-${i}`,
        target: 'main',
        strategy: 'alternating',
        roles: [`alt_${i}_a`, `alt_${i}_b`],
        gracePeriod: '1d',
        provider: 'local',
        secret: `pg/alt-${i}`,
      })),
    };
    const redactor = new Redactor();
    const app = await createApp(parseConfigText(JSON.stringify(config), env), {
      redactor,
      log: createLogger(redactor, { destination: new PassThrough() }),
      env,
    });
    try {
      await syncAccounts(app.state, app.config);
      // Every account switched to _a a minute ago; _b is previous and in grace for a day.
      const setup = new pg.Client({ ...connection, database: 'bench_state' });
      await setup.connect();
      const ids = Array.from({ length: ACCOUNTS }, () => randomUUID());
      await setup.query(
        `INSERT INTO pgrotate.rotations (id, account, strategy, status, step, target_role, previous_role, finished_at, old_credential_expires_at)
         SELECT id, 'alt-' || i, 'alternating', 'succeeded', 'recorded', 'alt_' || i || '_a', 'alt_' || i || '_b',
                now() - interval '1 minute', now() + interval '1 day' - interval '1 minute'
           FROM unnest($1::uuid[]) WITH ORDINALITY AS r(id, n), LATERAL (SELECT n - 1 AS i) x`,
        [ids],
      );
      await setup.query(
        `UPDATE pgrotate.accounts a SET active_role = r.target_role, last_rotation_id = r.id, last_status = 'succeeded',
                last_rotated_at = r.finished_at, old_credential_expires_at = r.old_credential_expires_at
           FROM pgrotate.rotations r WHERE r.account = a.name`,
      );
      await setup.query('VACUUM ANALYZE pgrotate.accounts');
      await setup.end();

      // SESSIONS sessions as previous roles, spread over SESSIONS / 2 accounts, two applications.
      for (let i = 0; i < SESSIONS; i++) {
        const c = new pg.Client({
          ...connection,
          user: `alt_${i % Math.max(1, Math.floor(SESSIONS / 2))}_b`,
          password: PASSWORD,
          database: 'bench_target',
          application_name:
            Math.floor(i / Math.max(1, Math.floor(SESSIONS / 2))) % 2 === 0 ? 'billing-worker' : 'reports',
        });
        c.on('error', () => undefined);
        await c.connect();
        held.push(c);
      }

      const roles = Array.from({ length: ACCOUNTS }, (_, i) => `alt_${i}_b`);
      const admin = new pg.Client({ ...connection, database: 'bench_target' });
      await admin.connect();
      let groups = 0;
      let seen = 0;
      const statement = await timed(RUNS, async () => {
        const res = await admin.query<{ sessions: number }>(ROLE_SESSIONS_SQL, [roles]);
        groups = res.rowCount ?? 0;
        seen = res.rows.reduce((n, r) => n + r.sessions, 0);
      });
      // The design not taken: one statement per account.
      const perAccount = await timed(Math.min(RUNS, 5), async () => {
        for (const role of roles) await admin.query(ROLE_SESSIONS_SQL, [[role]]);
      });
      await admin.end();
      if (seen !== SESSIONS) throw new Error(`the statement saw ${seen} sessions, expected ${SESSIONS}`);

      const usage = createPreviousRoleUsage(app);
      let last = await usage.tick();
      if (last.accounts !== ACCOUNTS || last.targetQueries !== 1)
        throw new Error(`a pass sampled ${last.accounts} accounts with ${last.targetQueries} statements`);
      const pass = await timed(RUNS, async () => {
        last = await usage.tick();
      });
      // Its parts on the state database: the account list, and storing 1,000 samples.
      const store = app.state.previousRoleUsage;
      const inGrace = await store.accountsInGrace(86_400_000);
      const stateRead = await timed(RUNS, () => store.accountsInGrace(86_400_000));
      const samples = inGrace.map((g) => ({ ...g, sessions: 0, clients: [], oldestBackendStart: null }));
      const storeSamples = await timed(RUNS, () => store.recordSamples(samples));
      const live = await timed(Math.min(RUNS, 20), () => usage.live());
      const rssMb = Math.round(process.memoryUsage().rss / 1024 / 1024);

      const report = {
        accounts: ACCOUNTS,
        sessionsHeld: SESSIONS,
        runs: RUNS,
        roleSessionsStatementMs: stats(statement),
        rowsReturned: groups,
        samplingPassMs: stats(pass),
        stateReadMs: stats(stateRead),
        storeSamplesMs: stats(storeSamples),
        statusLiveMs: stats(live),
        onePerAccountMs: stats(perAccount),
        lastPass: { ...last, ms: Number(last.ms.toFixed(2)) },
        rssMb,
        loadAverage: (await import('node:os')).loadavg().map((x) => Number(x.toFixed(1))),
      };
      console.log(JSON.stringify(report, null, 2));
    } finally {
      await app.close();
    }
  } finally {
    for (const c of held) await c.end().catch(() => undefined);
    stopPgServer(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
