import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { baoApi, startBaoServer, type BaoServer } from '../../test/support/bao-server.js';
import { freePort } from '../../test/support/free-port.js';
import { createPgFixture, type PgFixture } from '../../test/support/pg-fixture.js';
import { restartPgServer, startPgServer, stopPgServer, type PgServerInfo } from '../../test/support/pg-server.js';
import { restartRedisServer, startRedisServer, stopRedisServer, type RedisServerInfo } from '../../test/support/redis-server.js';
import { scanForLeaks, snapshotProcess, type ProcessSnapshot } from '../leak-scan.js';
import { checkCredentials, checkNoOverlap, type ChaosAccount } from './chaos-invariants.js';
import { createProviderSampler } from './provider-sampler.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

// `npm run chaos [-- --rounds R --accounts N --long]`: pgrotate worker processes rotate a set
// of accounts (single-user and alternating; OpenBao and the file provider) while the harness
// SIGKILLs workers (at random and at each protocol step via failpoints), seals OpenBao, makes
// it unreachable or stalls it past the provider timeout, and restarts PostgreSQL and Redis.
// After each round every account is checked with real logins (I1, I2) and the audit trail for
// overlapping rotations (I3); at the end everything is scanned for plaintext passwords (I4).

const STEPS = ['after-stage', 'after-apply', 'after-verify', 'after-promote', 'after-record'] as const;
const ENV_FAULTS = ['redis-restart', 'bao-seal', 'pg-restart', 'bao-stall', 'bao-refuse'] as const;
type EnvFault = (typeof ENV_FAULTS)[number];
type Backend = 'redis' | 'postgres';

interface Options {
  rounds: number;
  accounts: number;
  chaosMs: number;
  settleMs: number;
}

function parseArgs(argv: string[]): Options {
  const long = argv.includes('--long');
  const num = (flag: string, dflt: number) => {
    const i = argv.indexOf(flag);
    const v = i >= 0 ? Number(argv[i + 1]) : dflt;
    if (!Number.isInteger(v) || v < 1) throw new Error(`${flag} needs a positive integer`);
    return v;
  };
  return { rounds: num('--rounds', long ? 12 : 3), accounts: num('--accounts', long ? 12 : 6), chaosMs: long ? 20_000 : 7_000, settleMs: 45_000 };
}

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'dist', 'src', 'cli', 'main.js'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the repository root with a built dist/src/cli/main.js (run npm run build)');
    dir = up;
  }
  return dir;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);

interface WorkerSlot {
  index: number;
  child: ChildProcess | null;
  failpoint: { step: string; account: string } | null;
  /** Set when the harness itself stops the process for good (end of round). */
  expectingExit: boolean;
  /** Set when the harness SIGKILLs the process as a fault (it is restarted). */
  killedAtRandom: boolean;
}

class Chaos {
  faults = 0;
  failpointsFired = 0;
  /** Workers that exited on their own (not killed by a fault); restarted like a supervisor would. */
  selfExits: string[] = [];
  readonly faultLog: string[] = [];
  readonly logFiles: string[] = [];
  readonly snapshots: ProcessSnapshot[] = [];
  readonly livePids = new Set<number>();
  private logSeq = 0;

  constructor(
    readonly cli: string,
    readonly logDir: string,
    readonly env: NodeJS.ProcessEnv,
    readonly cwd: string,
  ) {}

  fault(what: string): void {
    this.faults++;
    this.faultLog.push(what);
    log(`fault: ${what}`);
  }

  /** Run the built CLI with output captured to a log file. */
  spawnCli(args: string[], extraEnv: NodeJS.ProcessEnv = {}): ChildProcess {
    const file = join(this.logDir, `${String(++this.logSeq).padStart(4, '0')}-${args.filter((a) => !a.includes('/')).slice(0, 2).join('-')}.log`);
    this.logFiles.push(file);
    const fd = openSync(file, 'a');
    const child = spawn(process.execPath, [this.cli, ...args], { env: { ...this.env, ...extraEnv }, cwd: this.cwd, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    if (child.pid) {
      const pid = child.pid;
      this.livePids.add(pid);
      child.once('exit', () => this.livePids.delete(pid));
    }
    return child;
  }

  /** Sample /proc of every live pgrotate process (for the leak scan). */
  sampleProcs(): void {
    for (const pid of this.livePids) {
      const s = snapshotProcess(pid);
      if (s) this.snapshots.push(s);
    }
    // Keep memory bounded on long runs: identical snapshots add nothing.
    if (this.snapshots.length > 2000) {
      const seen = new Set<string>();
      const kept = this.snapshots.filter((s) => {
        const k = `${s.cmdline}\u0000${s.environ}`;
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      });
      this.snapshots.splice(0, this.snapshots.length, ...kept);
    }
  }
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const root = repoRoot();
  const cli = join(root, 'dist', 'src', 'cli', 'main.js');
  const t0 = Date.now();

  const pgInfo: PgServerInfo = startPgServer({
    label: 'chaos',
    binDir: process.env.PGROTATE_PG15_BIN ?? '/usr/lib/postgresql/15/bin',
    port: await freePort(),
    settings: { log_statement: 'all', shared_preload_libraries: 'pg_stat_statements' },
  });
  let redis: RedisServerInfo | null = null;
  let bao: BaoServer | null = null;
  let proxy: TcpProxy | null = null;
  let fx: PgFixture | null = null;
  const workers: WorkerSlot[] = [];
  try {
    redis = await startRedisServer(await freePort());
    fx = await createPgFixture(pgInfo);
    const auditFile = join(fx.dir, 'bao-audit.log');
    bao = await startBaoServer({ label: 'chaos', auditFile });
    if (!bao.unsealKey) throw new Error('the OpenBao dev server did not print its unseal key');
    const baoPort = Number(new URL(bao.address).port);
    proxy = await startTcpProxy({ host: '127.0.0.1', port: baoPort });
    const su = await fx.superClient(fx.targetDb);
    await su.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await su.end();

    // Accounts: every third on the file provider, every second alternating.
    const accounts: ChaosAccount[] = [];
    for (let i = 0; i < opts.accounts; i++) {
      const name = `chaos-${i}`;
      const alternating = i % 2 === 1;
      const roles = alternating ? [`chaos_${i}_a_${fx.suffix}`, `chaos_${i}_b_${fx.suffix}`] : [`chaos_${i}_${fx.suffix}`];
      for (const r of roles) await fx.createRole(r);
      accounts.push({ name, strategy: alternating ? 'alternating' : 'single-user', roles, provider: i % 3 === 2 ? 'file' : 'vault', secret: `pg/${name}` });
    }
    const logDir = join(fx.dir, 'logs');
    mkdirSync(logDir);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TEST_ROTATOR_PASSWORD: fx.rotatorPassword,
      CHAOS_BAO_TOKEN: bao.rootToken,
      PGROTATE_LOG_LEVEL: 'debug',
      PGROTATE_ACTOR: 'chaos',
    };
    delete env.PGROTATE_FAILPOINT;
    delete env.PGROTATE_FAILPOINT_ACCOUNT;
    const chaos = new Chaos(cli, logDir, env, fx.dir);
    const sampler = createProviderSampler({ baoAddress: bao.address, baoToken: bao.rootToken, secretsFile: fx.secretsFile, accounts });
    const stateConn: pg.ClientConfig = { host: pgInfo.host, port: pgInfo.port, user: pgInfo.superuser, password: pgInfo.superPassword, database: fx.stateDb };
    const target = { host: pgInfo.host, port: pgInfo.port, database: fx.targetDb };
    const redisInfo = redis;
    const baoServer = bao;
    const faultProxy = proxy;
    const fixture = fx;

    const configFor = (backend: Backend): string => {
      const path = join(fixture.dir, `chaos-${backend}.json`);
      const config = {
        state: { url: `postgres://${fixture.rotator}@${pgInfo.host}:${pgInfo.port}/${fixture.stateDb}`, password: 'env:TEST_ROTATOR_PASSWORD', sslmode: 'disable' },
        providers: {
          bao: { type: 'vault', address: `http://127.0.0.1:${faultProxy.port}`, mount: 'secret', token: 'env:CHAOS_BAO_TOKEN', timeout: '2s' },
          local: { type: 'file', path: fixture.secretsFile },
        },
        targets: {
          main: { host: pgInfo.host, port: pgInfo.port, database: fixture.targetDb, sslmode: 'disable', connectTimeout: '3s', admin: { username: fixture.rotator, password: 'env:TEST_ROTATOR_PASSWORD' } },
        },
        defaults: { schedule: 'manual' },
        accounts: accounts.map((a) => ({
          name: a.name,
          target: 'main',
          provider: a.provider === 'vault' ? 'bao' : 'local',
          secret: a.secret,
          ...(a.strategy === 'alternating' ? { strategy: 'alternating', roles: a.roles, gracePeriod: '1h' } : { role: a.roles[0] }),
        })),
        queue: {
          backend,
          ...(backend === 'redis' ? { redis: { url: `redis://${redisInfo.host}:${redisInfo.port}` } } : {}),
          tickInterval: '1s',
          lockDuration: '3s',
          backoff: '1s',
          backoffCap: '2s',
          attempts: 4,
          cooldown: '1h',
          shutdownTimeout: '15s',
        },
        limits: { concurrency: 4, perTarget: 4 },
      };
      writeFileSync(path, JSON.stringify(config, null, 2), { mode: 0o600 });
      return path;
    };

    const state = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> => {
      const c = new pg.Client({ ...stateConn, application_name: 'chaos-harness' });
      c.on('error', () => undefined);
      await c.connect();
      try {
        return (await c.query<T>(sql, params)).rows;
      } finally {
        await c.end().catch(() => undefined);
      }
    };

    let sampling = true;
    const samplerLoop = (async () => {
      while (sampling) {
        await sampler.sample().catch(() => undefined);
        chaos.sampleProcs();
        await sleep(100);
      }
    })();

    const violations: string[] = [];
    const leakFindings = new Set<string>();
    let roundsDone = 0;
    let unfinished = 0;
    let logins = 0;

    for (let round = 0; round < opts.rounds; round++) {
      const backend: Backend = round % 2 === 0 ? 'redis' : 'postgres';
      const configPath = configFor(backend);
      log(`round ${round + 1}/${opts.rounds}: ${backend} queue`);
      const startWorkerIn = (slot: WorkerSlot) => {
        const fp = slot.failpoint;
        const child = chaos.spawnCli(['--config', configPath, 'worker'], fp ? { PGROTATE_FAILPOINT: fp.step, PGROTATE_FAILPOINT_ACCOUNT: fp.account } : {});
        slot.child = child;
        slot.expectingExit = false;
        child.once('exit', (code, signal) => {
          if (slot.child !== child) return;
          slot.child = null;
          if (slot.expectingExit) return;
          if (slot.killedAtRandom) {
            slot.killedAtRandom = false;
            setTimeout(() => {
              if (!slot.child && !slot.expectingExit) startWorkerIn(slot);
            }, 300);
            return;
          }
          if (signal === 'SIGKILL' && slot.failpoint) {
            chaos.failpointsFired++;
            chaos.fault(`failpoint ${slot.failpoint.step} (account ${slot.failpoint.account}) killed worker ${slot.index}`);
          } else {
            chaos.selfExits.push(`code ${code}, signal ${signal}`);
            log(`worker ${slot.index} exited by itself (code ${code}, signal ${signal}); restarting`);
          }
          // Restarted without the failpoint, so the crashed rotation can be resumed.
          slot.failpoint = null;
          setTimeout(() => {
            if (!slot.child && !slot.expectingExit) startWorkerIn(slot);
          }, 300);
        });
      };
      workers.length = 0;
      for (let w = 0; w < 2; w++) {
        const step = STEPS[(2 * round + w) % STEPS.length] as string;
        const account = accounts[(round + 3 * w) % accounts.length]?.name as string;
        const slot: WorkerSlot = { index: w, child: null, failpoint: { step, account }, expectingExit: false, killedAtRandom: false };
        workers.push(slot);
        startWorkerIn(slot);
      }
      // Workers sync the accounts into the state database at start.
      const syncDeadline = Date.now() + 30_000;
      while (Date.now() < syncDeadline) {
        const n = await state<{ n: string }>(`SELECT count(*) AS n FROM pgrotate.accounts`).catch(() => [{ n: '0' }]);
        if (Number(n[0]?.n) >= accounts.length) break;
        await sleep(200);
      }
      await sleep(1000);

      // Chaos phase: rotations requested every ~1.5 s while faults are injected.
      const enqueue = () =>
        new Promise<void>((resolve) => {
          const child = chaos.spawnCli(['--config', configPath, 'rotate', ...accounts.map((a) => a.name), '--reason', 'chaos']);
          const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      const chaosEnd = Date.now() + opts.chaosMs;
      const envFaults: EnvFault[] = [0, 1].map((k) => {
        const f = ENV_FAULTS[(2 * round + k) % ENV_FAULTS.length] as EnvFault;
        return f === 'redis-restart' && backend === 'postgres' ? 'pg-restart' : f;
      });
      const injectEnv = async (f: EnvFault) => {
        if (f === 'redis-restart') {
          chaos.fault('redis killed and restarted empty');
          await restartRedisServer(redisInfo, 1000);
        } else if (f === 'pg-restart') {
          chaos.fault('postgresql restarted (fast shutdown)');
          restartPgServer(pgInfo);
        } else if (f === 'bao-seal') {
          const api = baoApi(baoServer.address, baoServer.rootToken);
          chaos.fault('openbao sealed for 2 s');
          await api('PUT', 'sys/seal');
          await sleep(2000);
          await api('PUT', 'sys/unseal', { key: baoServer.unsealKey });
        } else if (f === 'bao-stall') {
          chaos.fault('openbao requests stalled for 5 s (provider timeout 2 s)');
          faultProxy.setMode('stall');
          await sleep(5000);
          faultProxy.setMode('pass');
        } else {
          chaos.fault('openbao unreachable (connections reset) for 2 s');
          faultProxy.setMode('refuse');
          await sleep(2000);
          faultProxy.setMode('pass');
        }
      };
      const faultTasks = [
        ...envFaults.map(async (f, k) => {
          await sleep(Math.floor(opts.chaosMs * (0.15 + 0.4 * k)) + randomInt(500));
          await injectEnv(f);
        }),
        (async () => {
          await sleep(randomInt(Math.floor(opts.chaosMs * 0.2), Math.floor(opts.chaosMs * 0.8)));
          const alive = workers.filter((w) => w.child);
          const victim = alive[randomInt(alive.length || 1)];
          if (victim?.child) {
            chaos.fault(`worker ${victim.index} SIGKILLed at random`);
            victim.killedAtRandom = true;
            victim.child.kill('SIGKILL');
          }
        })(),
      ];
      while (Date.now() < chaosEnd) {
        await enqueue();
        await sleep(randomInt(800, 1800));
      }
      await Promise.all(faultTasks);

      // Settle: faults healed, one last request for every account, then wait for all to finish.
      faultProxy.setMode('pass');
      const settleStart = new Date();
      await enqueue();
      const settleDeadline = Date.now() + opts.settleMs;
      let pendingAccounts: string[] = accounts.map((a) => a.name);
      while (Date.now() < settleDeadline) {
        const rows = await state<{ account: string }>(
          `SELECT a.name AS account FROM pgrotate.accounts a
            WHERE EXISTS (SELECT 1 FROM pgrotate.rotations r WHERE r.account = a.name AND r.status = 'running')
               OR NOT EXISTS (SELECT 1 FROM pgrotate.rotations r WHERE r.account = a.name AND r.finished_at >= $1)`,
          [settleStart],
        ).catch(() => null);
        if (rows) pendingAccounts = rows.map((r) => r.account).filter((n) => accounts.some((a) => a.name === n));
        if (rows && pendingAccounts.length === 0) break;
        await sleep(300);
      }
      if (pendingAccounts.length) {
        unfinished += pendingAccounts.length;
        log(`round ${round + 1}: not finished by the deadline: ${pendingAccounts.join(', ')}`);
      }
      // Leak scan of the queue while it still holds this round's jobs.
      const roundScan = await scanForLeaks({
        passwords: sampler.all(),
        environAllowed: [fixture.rotatorPassword, pgInfo.superPassword],
        ...(backend === 'redis' ? { redis: { host: redisInfo.host, port: redisInfo.port } } : {}),
        pgConnections: [{ label: 'state db', connection: stateConn }],
      });
      for (const f of roundScan.findings) leakFindings.add(f);

      for (const slot of workers) slot.expectingExit = true;
      await Promise.all(
        workers.map(async (slot) => {
          const child = slot.child;
          if (!child || child.exitCode !== null || child.signalCode !== null) return;
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
          await exited;
          clearTimeout(timer);
        }),
      );

      // Checks, with the workers stopped.
      await sampler.sample();
      const running = new Set((await state<{ account: string }>(`SELECT account FROM pgrotate.rotations WHERE status = 'running'`)).map((r) => r.account));
      const cred = await checkCredentials(target, accounts, sampler, running);
      logins += cred.logins;
      violations.push(...cred.violations.map((v) => `round ${round + 1}: ${v}`));
      for (const v of cred.violations) log(`VIOLATION round ${round + 1}: ${v}`);
      roundsDone++;
    }

    sampling = false;
    await samplerLoop;
    const overlap = await checkNoOverlap(stateConn, 'pgrotate');
    violations.push(...overlap.violations);
    for (const v of overlap.violations) log(`VIOLATION: ${v}`);

    // I4: the full leak scan.
    const passwords = sampler.all();
    const scan = await scanForLeaks({
      passwords,
      environAllowed: [fixture.rotatorPassword, pgInfo.superPassword, baoServer.rootToken],
      pgLogFile: pgInfo.logFile,
      pgConnections: [
        { label: 'state db', connection: stateConn },
        { label: 'target db', connection: { ...stateConn, database: fixture.targetDb }, statements: true },
      ],
      redis: { host: redisInfo.host, port: redisInfo.port },
      baoAuditFile: auditFile,
      logFiles: chaos.logFiles,
      processSnapshots: chaos.snapshots,
    });
    for (const f of scan.findings) leakFindings.add(f);
    const auditText = existsSync(auditFile) ? readFileSync(auditFile, 'utf8') : '';
    const hmacs = (auditText.match(/hmac-sha256:/g) ?? []).length;
    const pgLogSize = statSync(pgInfo.logFile).size;
    log(
      `leak scan: ${passwords.size} passwords in ${scan.searched.length} places (pg log ${pgLogSize} chars, bao audit ${auditText.length} chars with ${hmacs} hmac values, ` +
        `${chaos.logFiles.length} pgrotate logs, ${chaos.snapshots.length} /proc samples)`,
    );
    for (const f of leakFindings) log(`LEAK ${f}`);
    // The scan only means something if the places it searched recorded the run.
    const pgLog = readFileSync(pgInfo.logFile, 'utf8');
    const blind: string[] = [];
    if (!/statement: ALTER ROLE/.test(pgLog)) blind.push('the PostgreSQL log has no ALTER ROLE statements (log_statement=all not in effect?)');
    if (hmacs === 0) blind.push('the OpenBao audit log has no hmac-sha256 values (audit device not enabled?)');
    if (passwords.size === 0) blind.push('no password was collected from the providers');
    if (!scan.searched.some((w) => w.startsWith('target db pg_stat_statements ('))) blind.push('pg_stat_statements was not read');
    for (const b of blind) log(`SCAN BLIND: ${b}`);
    const seconds = ((Date.now() - t0) / 1000).toFixed(1);
    console.log(`details: ${overlap.started} rotations started, ${overlap.succeeded} succeeded, ${overlap.failed} failed; ${chaos.failpointsFired} failpoint crashes; ${chaos.selfExits.length} worker self-exits; ${unfinished} account-rounds unfinished at the deadline; ${logins} login checks; ${seconds} s`);
    console.log(`leaks: ${leakFindings.size}`);
    console.log(`chaos: ${roundsDone} rounds, ${overlap.started} rotations, ${chaos.faults} faults, ${violations.length} violations`);
    if (blind.length) return 2;
    return violations.length > 0 || leakFindings.size > 0 ? 1 : 0;
  } finally {
    for (const slot of workers) {
      slot.expectingExit = true;
      slot.child?.kill('SIGKILL');
    }
    await proxy?.close().catch(() => undefined);
    await bao?.stop().catch(() => undefined);
    if (redis) await stopRedisServer(redis).catch(() => undefined);
    if (process.env.CHAOS_KEEP !== '1') {
      await fx?.cleanup().catch(() => undefined);
      stopPgServer(pgInfo);
    } else log(`kept: ${fx?.dir} and ${pgInfo.dataDir}`);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(2);
  },
);
