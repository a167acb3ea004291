import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { baoApi, startBaoServer, type BaoServer } from '../../test/support/bao-server.js';
import { freePort } from '../../test/support/free-port.js';
import { createPgFixture, type PgFixture } from '../../test/support/pg-fixture.js';
import { restartPgServer, startPgServer, stopPgServer, type PgServerInfo } from '../../test/support/pg-server.js';
import {
  restartRedisServer,
  startRedisServer,
  stopRedisServer,
  type RedisServerInfo,
} from '../../test/support/redis-server.js';
import { quoteIdent } from '../../src/core/pg/quote.js';
import { fileChunks, scanForLeaks, snapshotProcess, type ProcessSnapshot } from '../leak-scan.js';
import {
  connectionLimitFault,
  expiredRoleFault,
  hbaRejectFault,
  healAccounts,
  killWhileRecordingFailureFault,
  offboardRaceFault,
  type CliOutput,
  type FaultEnv,
} from './account-faults.js';
import { checkCredentials, checkNoOverlap, checkReportedState, type ChaosAccount } from './chaos-invariants.js';
import { rotationWindows, startCurrentReader, unexplained } from './current-reader.js';
import { FaultTally, type FaultKind } from './fault-kinds.js';
import { createProviderSampler } from './provider-sampler.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';
import { repoRoot } from '../repo-root.js';

// `npm run chaos [-- --rounds R --accounts N | --long | --minutes N]`: pgrotate worker processes
// rotate a set of accounts (single-user and alternating; OpenBao and the file provider; Redis and
// PostgreSQL queues in alternate rounds) while the harness SIGKILLs workers (at random, at each
// protocol step, and while they record a permanent failure), seals OpenBao, makes it unreachable
// or stalls it past the provider timeout, restarts PostgreSQL and Redis, and aims faults at single
// accounts: a role at its connection limit, pg_hba.conf rejecting the role, VALID UNTIL in the
// past, a scheduled rotation racing `offboard --terminate-sessions`. A reader logs in with what
// each provider calls current all the time (I1 outside the apply→promote window); after each
// round every account is checked with real logins (I1, I2), the audit trail for overlapping
// rotations (I3), and what was reported against PostgreSQL and the providers; at the end
// everything is scanned for plaintext passwords (I4).

const STEPS = ['after-stage', 'after-apply', 'after-verify', 'after-promote', 'after-record'] as const;
const ENV_FAULTS = ['redis-restart', 'bao-seal', 'pg-restart', 'bao-stall', 'bao-refuse'] as const;
type EnvFault = (typeof ENV_FAULTS)[number];
type Backend = 'redis' | 'postgres';
/** Account faults run by the lanes, in turn (the kill while recording a failure runs once a round). */
const LANE_FAULTS = [
  'conn-limit',
  'hba-preflight',
  'valid-until-past',
  'offboard-race',
  'hba-between',
  'valid-until-renew',
] as const;
type LaneFault = (typeof LANE_FAULTS)[number];

interface Options {
  /** At most this many rounds. */
  rounds: number;
  accounts: number;
  chaosMs: number;
  settleMs: number;
  /** Account faults running at once during the chaos phase. */
  lanes: number;
  envFaultsPerRound: number;
  randomKillsPerRound: number;
  /** Stop starting rounds after this long (ms since start). */
  budgetMs: number;
  /** --long: stop once both are reached (after minRounds). */
  targets: { rotations: number; faults: number; minRounds: number } | null;
}

function parseArgs(argv: string[]): Options {
  const long = argv.includes('--long');
  const minutesAt = argv.indexOf('--minutes');
  const num = (flag: string, dflt: number) => {
    const i = argv.indexOf(flag);
    const v = i >= 0 ? Number(argv[i + 1]) : dflt;
    if (!Number.isInteger(v) || v < 1) throw new Error(`${flag} needs a positive integer`);
    return v;
  };
  const big = long || minutesAt >= 0;
  const base: Options = {
    rounds: num('--rounds', 3),
    accounts: num('--accounts', big ? 14 : 6),
    chaosMs: big ? 30_000 : 9_000,
    settleMs: 45_000,
    lanes: big ? 3 : 2,
    envFaultsPerRound: big ? 3 : 2,
    randomKillsPerRound: big ? 2 : 1,
    budgetMs: Number.POSITIVE_INFINITY,
    targets: null,
  };
  if (minutesAt >= 0)
    return { ...base, rounds: num('--rounds', Number.MAX_SAFE_INTEGER), budgetMs: num('--minutes', 60) * 60_000 };
  // --long: rounds until at least 1,000 rotations and 200 faults, within 27 minutes of rounds.
  if (long)
    return {
      ...base,
      rounds: num('--rounds', 60),
      budgetMs: 27 * 60_000,
      targets: { rotations: 1000, faults: 200, minRounds: 8 },
    };
  return base;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);

interface WorkerSlot {
  index: number;
  child: ChildProcess | null;
  /** PGROTATE_FAILPOINT entries (`after-apply@chaos-3`) not yet fired; kept across restarts. */
  failpoints: string[];
  logFile: string | null;
  /** Set when the harness itself stops the process for good (end of round). */
  expectingExit: boolean;
  /** Set when the harness SIGKILLs the process as a fault (it is restarted). */
  killedAtRandom: boolean;
}

class Chaos {
  readonly tally = new FaultTally();
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

  get faults(): number {
    return this.tally.total;
  }

  fault(kind: FaultKind, what: string): void {
    this.tally.add(kind);
    this.faultLog.push(what);
    log(`fault [${kind}]: ${what}`);
  }

  /** Run the built CLI with output captured to a log file (stdout to its own file if asked). */
  spawnCli(
    args: string[],
    extraEnv: NodeJS.ProcessEnv = {},
    stdoutFile = false,
  ): ChildProcess & { logFile: string; outFile: string | null } {
    const stem = join(
      this.logDir,
      `${String(++this.logSeq).padStart(5, '0')}-${args
        .filter((a) => !a.includes('/'))
        .slice(0, 2)
        .join('-')}`,
    );
    const file = `${stem}.log`;
    const outFile = stdoutFile ? `${stem}.out` : null;
    this.logFiles.push(file);
    if (outFile) this.logFiles.push(outFile);
    const fd = openSync(file, 'a');
    const outFd = outFile ? openSync(outFile, 'a') : fd;
    const child = spawn(process.execPath, [this.cli, ...args], {
      env: { ...this.env, ...extraEnv },
      cwd: this.cwd,
      stdio: ['ignore', outFd, fd],
    });
    closeSync(fd);
    if (outFd !== fd) closeSync(outFd);
    if (child.pid) {
      const pid = child.pid;
      this.livePids.add(pid);
      child.once('exit', () => this.livePids.delete(pid));
    }
    return Object.assign(child, { logFile: file, outFile });
  }

  /** Run the CLI to the end (SIGKILL after `timeoutMs`); its exit code and stdout. */
  runCli(args: string[], extraEnv: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<CliOutput> {
    return new Promise((resolve) => {
      const child = this.spawnCli(args, extraEnv, true);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({
          code,
          stdout: child.outFile && existsSync(child.outFile) ? readFileSync(child.outFile, 'utf8') : '',
        });
      });
    });
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

/** A chaos account with what its faults need: the principal it is exposed to, renewValidUntil. */
type RunAccount = ChaosAccount & { principal: string; renewValidUntil: boolean };

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const root = repoRoot();
  const cli = join(root, 'dist', 'src', 'entry', 'cli', 'main.js');
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
    // offboard --terminate-sessions: the admin login may end the roles' sessions.
    await su.query(`GRANT pg_signal_backend TO ${quoteIdent(fx.rotator)}`);
    await su.end();

    // Accounts: every second alternating, every third on the file provider, every fourth
    // (from 2) single-user with renewValidUntil; each exposed to its own principal.
    const accounts: RunAccount[] = [];
    for (let i = 0; i < opts.accounts; i++) {
      const name = `chaos-${i}`;
      const alternating = i % 2 === 1;
      const roles = alternating
        ? [`chaos_${i}_a_${fx.suffix}`, `chaos_${i}_b_${fx.suffix}`]
        : [`chaos_${i}_${fx.suffix}`];
      for (const r of roles) await fx.createRole(r);
      accounts.push({
        name,
        strategy: alternating ? 'alternating' : 'single-user',
        roles,
        provider: i % 3 === 2 ? 'file' : 'vault',
        secret: `pg/${name}`,
        principal: `person-${i}`,
        renewValidUntil: !alternating && i % 4 === 2,
      });
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
    const sampler = createProviderSampler({
      baoAddress: bao.address,
      baoToken: bao.rootToken,
      secretsFile: fx.secretsFile,
      accounts,
    });
    const stateConn: pg.ClientConfig = {
      host: pgInfo.host,
      port: pgInfo.port,
      user: pgInfo.superuser,
      password: pgInfo.superPassword,
      database: fx.stateDb,
    };
    const target = { host: pgInfo.host, port: pgInfo.port, database: fx.targetDb };
    const redisInfo = redis;
    const baoServer = bao;
    const faultProxy = proxy;
    const fixture = fx;

    const configFor = (backend: Backend | null): string => {
      const path = join(fixture.dir, `chaos-${backend ?? 'inline'}.json`);
      const config = {
        state: {
          url: `postgres://${fixture.rotator}@${pgInfo.host}:${pgInfo.port}/${fixture.stateDb}`,
          password: 'env:TEST_ROTATOR_PASSWORD',
          sslmode: 'disable',
        },
        providers: {
          bao: {
            type: 'vault',
            address: `http://127.0.0.1:${faultProxy.port}`,
            mount: 'secret',
            token: 'env:CHAOS_BAO_TOKEN',
            timeout: '2s',
          },
          local: { type: 'file', path: fixture.secretsFile },
        },
        targets: {
          main: {
            host: pgInfo.host,
            port: pgInfo.port,
            database: fixture.targetDb,
            sslmode: 'disable',
            connectTimeout: '3s',
            admin: { username: fixture.rotator, password: 'env:TEST_ROTATOR_PASSWORD' },
          },
        },
        defaults: { schedule: 'manual' },
        accounts: accounts.map((a) => ({
          name: a.name,
          target: 'main',
          provider: a.provider === 'vault' ? 'bao' : 'local',
          secret: a.secret,
          exposedTo: [a.principal],
          ...(a.renewValidUntil ? { renewValidUntil: '3650d' } : {}),
          ...(a.strategy === 'alternating'
            ? { strategy: 'alternating', roles: a.roles, gracePeriod: '1h' }
            : { role: a.roles[0] }),
        })),
        // The inline config (no queue) runs the harness's own `rotate --json` in its process.
        ...(backend
          ? {
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
            }
          : {}),
        limits: { concurrency: 4, perTarget: 4 },
      };
      writeFileSync(path, JSON.stringify(config, null, 2), { mode: 0o600 });
      return path;
    };
    const inlineConfig = configFor(null);

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
    /** The same, retried while PostgreSQL restarts (another fault). */
    const stateRetry = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> => {
      for (let i = 0; ; i++) {
        try {
          return await state<T>(sql, params);
        } catch (err) {
          if (i >= 30) throw err;
          await sleep(500);
        }
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
    const reader = startCurrentReader({ target, accounts, sampler, pauseMs: 40 });

    const violations: string[] = [];
    const violation = (v: string) => {
      violations.push(v);
      log(`VIOLATION ${v}`);
    };
    const leakFindings = new Set<string>();
    let roundsDone = 0;
    let unfinished = 0;
    let logins = 0;
    let readerRefusalsExplained = 0;
    /** `rotate --wait` / `offboard` runs that printed no result (their own connection lost to a restart). */
    let waitsCut = 0;
    const roundTimes: number[] = [];
    let laneTurn = 0;
    const laneKindsDone = new Set<LaneFault>();

    for (let round = 0; round < opts.rounds; round++) {
      const roundStart = Date.now();
      const backend: Backend = round % 2 === 0 ? 'redis' : 'postgres';
      const configPath = configFor(backend);
      log(`round ${round + 1}: ${backend} queue`);
      // This round's account for the kill while recording a failure, and the step failpoints.
      const killAccount = accounts[(2 * round + 1) % accounts.length] as RunAccount;
      const killsRecording = { fired: 0 };
      const startWorkerIn = (slot: WorkerSlot) => {
        const child = chaos.spawnCli(
          ['--config', configPath, 'worker'],
          slot.failpoints.length ? { PGROTATE_FAILPOINT: slot.failpoints.join(',') } : {},
        );
        slot.child = child;
        slot.logFile = child.logFile;
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
          // A failpoint says which one it was on stderr just before SIGKILL.
          const fired = signal === 'SIGKILL' ? firedFailpoint(child.logFile) : null;
          if (fired) {
            chaos.failpointsFired++;
            slot.failpoints = slot.failpoints.filter((f) => f !== `${fired.name}@${fired.account}`);
            if (fired.name === 'recording-failure') {
              killsRecording.fired++;
              chaos.fault(
                'kill-recording-failure',
                `worker ${slot.index} SIGKILLed while recording a permanent failure of account ${fired.account}`,
              );
            } else
              chaos.fault(
                'crash-at-step',
                `failpoint ${fired.name} (account ${fired.account}) killed worker ${slot.index}`,
              );
          } else {
            chaos.selfExits.push(`code ${code}, signal ${signal}`);
            log(`worker ${slot.index} exited by itself (code ${code}, signal ${signal}); restarting`);
          }
          setTimeout(() => {
            if (!slot.child && !slot.expectingExit) startWorkerIn(slot);
          }, 300);
        });
      };
      workers.length = 0;
      for (let w = 0; w < 2; w++) {
        const step = STEPS[(2 * round + w) % STEPS.length] as string;
        let stepAccount = accounts[(round + 3 * w) % accounts.length] as RunAccount;
        if (stepAccount === killAccount) stepAccount = accounts[(round + 3 * w + 1) % accounts.length] as RunAccount;
        const slot: WorkerSlot = {
          index: w,
          child: null,
          failpoints: [`${step}@${stepAccount.name}`, `recording-failure@${killAccount.name}`],
          logFile: null,
          expectingExit: false,
          killedAtRandom: false,
        };
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

      // Accounts under an account fault are left out of the harness's own requests meanwhile.
      const inUse = new Set<string>();
      const faultEnv: FaultEnv = {
        target,
        sampler,
        reader,
        hbaFile: join(pgInfo.dataDir, 'pg_hba.conf'),
        schema: 'pgrotate',
        inline: (args, extraEnv = {}, timeoutMs) =>
          chaos.runCli(['--config', inlineConfig, ...args], extraEnv, timeoutMs),
        queued: async (args, timeoutMs) => {
          const out = await chaos.runCli(['--config', configPath, ...args], {}, timeoutMs);
          if (!out.stdout.trim()) waitsCut++;
          return out;
        },
        su: () => fixture.superClient(fixture.targetDb),
        state: stateRetry,
        fault: (kind, what) => chaos.fault(kind, what),
        violation: (v) => violation(`round ${round + 1}: ${v}`),
        log,
      };

      // Chaos phase: rotations requested every ~1.5 s while faults are injected.
      const enqueue = (names?: string[]) =>
        new Promise<void>((resolve) => {
          const list = names ?? accounts.filter((a) => !inUse.has(a.name)).map((a) => a.name);
          if (list.length === 0) return resolve();
          const child = chaos.spawnCli(['--config', configPath, 'rotate', ...list, '--reason', 'chaos']);
          const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      const chaosEnd = Date.now() + opts.chaosMs;
      const envFaults: EnvFault[] = Array.from({ length: opts.envFaultsPerRound }, (_, k) => {
        const f = ENV_FAULTS[(opts.envFaultsPerRound * round + k) % ENV_FAULTS.length] as EnvFault;
        return f === 'redis-restart' && backend === 'postgres' ? 'pg-restart' : f;
      });
      const injectEnv = async (f: EnvFault) => {
        if (f === 'redis-restart') {
          chaos.fault('redis-restart', 'redis killed and restarted empty');
          await restartRedisServer(redisInfo, 1000);
        } else if (f === 'pg-restart') {
          chaos.fault('pg-restart', 'postgresql restarted (fast shutdown)');
          restartPgServer(pgInfo);
        } else if (f === 'bao-seal') {
          const api = baoApi(baoServer.address, baoServer.rootToken);
          chaos.fault('bao-seal', 'openbao sealed for 2 s');
          await api('PUT', 'sys/seal');
          await sleep(2000);
          await api('PUT', 'sys/unseal', { key: baoServer.unsealKey });
        } else if (f === 'bao-stall') {
          chaos.fault('bao-stall', 'openbao requests stalled for 5 s (provider timeout 2 s)');
          faultProxy.setMode('stall');
          await sleep(5000);
          faultProxy.setMode('pass');
        } else {
          chaos.fault('bao-refuse', 'openbao unreachable (connections reset) for 2 s');
          faultProxy.setMode('refuse');
          await sleep(2000);
          faultProxy.setMode('pass');
        }
      };
      const eligible = (kind: LaneFault, a: RunAccount): boolean => {
        if (inUse.has(a.name) || a === killAccount) return false;
        // Account faults hit managed accounts: a restore, a session to hold or to end needs a
        // credential the provider calls current. (A role expired while its very first rotation
        // is between apply and verify keeps its pending password live and unpromoted, which
        // pgrotate rightly refuses to discard: that account then needs a person.)
        if (sampler.seenCurrent(a.name).size === 0) return false;
        if (kind === 'valid-until-past') return a.strategy === 'single-user' && !a.renewValidUntil;
        if (kind === 'valid-until-renew') return a.renewValidUntil;
        if (kind === 'hba-between') return a.strategy === 'single-user';
        return true;
      };
      const runLaneFault = async (kind: LaneFault, a: RunAccount): Promise<boolean> => {
        let injected = false;
        const env: FaultEnv = {
          ...faultEnv,
          fault: (k, what) => {
            injected = true;
            faultEnv.fault(k, what);
          },
        };
        if (kind === 'conn-limit') await connectionLimitFault(env, a);
        else if (kind === 'hba-preflight') await hbaRejectFault(env, a, 'preflight');
        else if (kind === 'hba-between') await hbaRejectFault(env, a, 'between');
        else if (kind === 'offboard-race') await offboardRaceFault(env, a);
        else await expiredRoleFault(env, a);
        return injected;
      };
      // Lanes run account faults in turn until the chaos phase ends, and past it (by at most
      // another chaos phase) while some kind has not been injected yet in this run.
      const laneEnd = () =>
        Date.now() < chaosEnd - 2000 ||
        (laneKindsDone.size < LANE_FAULTS.length && Date.now() < chaosEnd + opts.chaosMs);
      const lane = async (k: number) => {
        await sleep(1000 + 700 * k);
        while (laneEnd()) {
          let ran = false;
          for (let tries = 0; tries < LANE_FAULTS.length && !ran; tries++) {
            const kind = LANE_FAULTS[laneTurn++ % LANE_FAULTS.length] as LaneFault;
            if (Date.now() >= chaosEnd - 2000 && laneKindsDone.has(kind)) continue;
            const free = accounts.filter((a) => eligible(kind, a));
            const a = free[randomInt(free.length || 1)];
            if (!a) continue;
            inUse.add(a.name);
            ran = true;
            try {
              if (await runLaneFault(kind, a)) laneKindsDone.add(kind);
            } catch (err) {
              log(
                `account fault ${kind} on ${a.name} could not finish: ${err instanceof Error ? err.message : String(err)}`,
              );
            } finally {
              inUse.delete(a.name);
            }
          }
          if (!ran) await sleep(300);
        }
      };
      const faultTasks = [
        ...envFaults.map(async (f, k) => {
          await sleep(Math.floor(opts.chaosMs * (0.1 + (0.8 * k) / opts.envFaultsPerRound)) + randomInt(500));
          // A fault that cannot be injected or healed (a slow pg_ctl) must not end the run; the
          // settle phase heals what is left.
          await injectEnv(f).catch((err: unknown) =>
            log(`fault ${f} could not finish: ${err instanceof Error ? err.message : String(err)}`),
          );
        }),
        ...Array.from({ length: opts.randomKillsPerRound }, async () => {
          await sleep(randomInt(Math.floor(opts.chaosMs * 0.2), Math.floor(opts.chaosMs * 0.8)));
          const alive = workers.filter((w) => w.child);
          const victim = alive[randomInt(alive.length || 1)];
          if (victim?.child) {
            chaos.fault('crash-random', `worker ${victim.index} SIGKILLed at random`);
            victim.killedAtRandom = true;
            victim.child.kill('SIGKILL');
          }
        }),
        (async () => {
          // Not before the account has a current value: NOLOGIN during its very first rotation
          // would leave a live, unpromoted pending password (see eligible()).
          const ready = Date.now() + opts.chaosMs * 0.6;
          await sleep(500);
          while (sampler.seenCurrent(killAccount.name).size === 0 && Date.now() < ready) await sleep(300);
          if (sampler.seenCurrent(killAccount.name).size === 0)
            return log(`kill-recording-failure: ${killAccount.name} has no current value yet; skipped this round`);
          inUse.add(killAccount.name);
          try {
            await killWhileRecordingFailureFault(faultEnv, killAccount, () => killsRecording.fired);
          } catch (err) {
            log(
              `kill-recording-failure on ${killAccount.name} could not finish: ${err instanceof Error ? err.message : String(err)}`,
            );
          } finally {
            inUse.delete(killAccount.name);
          }
        })(),
        ...Array.from({ length: opts.lanes }, (_, k) => lane(k)),
      ];
      // Requests every 0.8-1.8 s, at most two `rotate` processes at a time (a CLI start takes
      // seconds on a busy machine; the workers, not the requests, should set the pace).
      const inFlight = new Set<Promise<void>>();
      while (Date.now() < chaosEnd) {
        if (inFlight.size >= 2) await Promise.race(inFlight);
        const p: Promise<void> = enqueue().then(() => void inFlight.delete(p));
        inFlight.add(p);
        await sleep(randomInt(800, 1800));
      }
      await Promise.all([...inFlight, ...faultTasks]);

      // Settle: faults healed, one last request for every account, then wait for all to finish.
      faultProxy.setMode('pass');
      await baoApi(baoServer.address, baoServer.rootToken)('PUT', 'sys/unseal', { key: baoServer.unsealKey }).catch(
        () => undefined,
      );
      await healAccounts(faultEnv, accounts).catch((err: unknown) =>
        log(`could not heal the accounts: ${err instanceof Error ? err.message : String(err)}`),
      );
      for (const slot of workers) slot.failpoints = [];
      const settleStart = (await stateRetry<{ now: Date }>('SELECT clock_timestamp() AS now'))[0]?.now ?? new Date();
      await enqueue(accounts.map((a) => a.name));
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
      const running = new Set(
        (await state<{ account: string }>(`SELECT account FROM pgrotate.rotations WHERE status = 'running'`)).map(
          (r) => r.account,
        ),
      );
      const cred = await checkCredentials(target, accounts, sampler, running);
      logins += cred.logins;
      for (const v of cred.violations) violation(`round ${round + 1}: ${v}`);
      // I1 as applications saw it: every refusal of the provider's current value falls in a window.
      const { windows } = await rotationWindows(stateConn, 'pgrotate');
      const refusals = reader.drain();
      const bad = unexplained(refusals, windows);
      readerRefusalsExplained += refusals.length - bad.length;
      for (const r of bad) {
        violation(
          `round ${round + 1}: I1 account ${r.account}: the provider's current credential (role ${r.role}, rotation ${r.rotationId ?? '-'}) was refused at ${new Date(r.loginAt).toISOString()}, outside every rotation's apply→promote window`,
        );
      }
      // Reported outcomes against PostgreSQL and the providers.
      const status = await chaos.runCli(['--config', inlineConfig, 'status', '--json'], {}, 60_000);
      const reported = await checkReportedState(stateConn, 'pgrotate', accounts, sampler, running, status.stdout);
      for (const v of reported) violation(`round ${round + 1}: ${v}`);
      roundsDone++;
      roundTimes.push(Date.now() - roundStart);

      // When to stop: --minutes / --long budget (a round must fit), --long targets.
      const elapsed = Date.now() - t0;
      const longest = Math.max(...roundTimes);
      if (elapsed + longest > opts.budgetMs) break;
      if (opts.targets && roundsDone >= opts.targets.minRounds) {
        const started = Number(
          (await stateRetry<{ n: string }>(`SELECT count(*) AS n FROM pgrotate.rotations`))[0]?.n ?? 0,
        );
        if (started >= opts.targets.rotations && chaos.faults >= opts.targets.faults) break;
      }
    }

    sampling = false;
    await samplerLoop;
    await reader.stop();
    const overlap = await checkNoOverlap(stateConn, 'pgrotate');
    for (const v of overlap.violations) violation(v);
    const { applyToPromoteMs } = await rotationWindows(stateConn, 'pgrotate');

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
    // Counted chunk by chunk: the audit log of a long run outgrows a single string.
    let hmacs = 0;
    for (const chunk of fileChunks(auditFile))
      hmacs += (chunk.text.slice(chunk.text.length - chunk.fresh).match(/hmac-sha256:/g) ?? []).length;
    const auditSize = existsSync(auditFile) ? statSync(auditFile).size : 0;
    const pgLogSize = statSync(pgInfo.logFile).size;
    log(
      `leak scan: ${passwords.size} passwords in ${scan.searched.length} places (pg log ${pgLogSize} chars, bao audit ${auditSize} chars with ${hmacs} hmac values, ` +
        `${chaos.logFiles.length} pgrotate logs, ${chaos.snapshots.length} /proc samples)`,
    );
    for (const f of leakFindings) log(`LEAK ${f}`);
    // The scan only means something if the places it searched recorded the run.
    let alterSeen = false;
    for (const chunk of fileChunks(pgInfo.logFile)) if (/statement: ALTER ROLE/.test(chunk.text)) alterSeen = true;
    const blind: string[] = [];
    if (!alterSeen) blind.push('the PostgreSQL log has no ALTER ROLE statements (log_statement=all not in effect?)');
    if (hmacs === 0) blind.push('the OpenBao audit log has no hmac-sha256 values (audit device not enabled?)');
    if (passwords.size === 0) blind.push('no password was collected from the providers');
    if (!scan.searched.some((w) => w.startsWith('target db pg_stat_statements (')))
      blind.push('pg_stat_statements was not read');
    if (reader.stats.logins === 0) blind.push('the reader never logged in');
    for (const b of blind) log(`SCAN BLIND: ${b}`);
    const seconds = ((Date.now() - t0) / 1000).toFixed(1);
    const sorted = [...applyToPromoteMs].sort((a, b) => a - b);
    const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : 0);
    const outages = [...reader.outagesMs].sort((a, b) => a - b);
    console.log(
      `details: ${overlap.started} rotations started, ${overlap.succeeded} succeeded, ${overlap.failed} failed; ${chaos.failpointsFired} failpoint crashes; ` +
        `${chaos.selfExits.length} worker self-exits; ${unfinished} account-rounds unfinished at the deadline; ${waitsCut} waiting CLI runs without a result; ${logins} login checks; ${seconds} s`,
    );
    console.log(
      `reader: ${reader.stats.logins} logins with the provider's current value, ${readerRefusalsExplained} refused inside apply→promote windows, ` +
        `${reader.stats.excluded} refused while the harness had expired the role; outages seen ${outages.length} (p50 ${outages[Math.floor(outages.length / 2)] ?? 0} ms, max ${outages.at(-1) ?? 0} ms); ` +
        `single-user apply→promote window p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${sorted.at(-1) ?? 0} ms (${sorted.length} rotations)`,
    );
    console.log(chaos.tally.summary());
    console.log(
      `chaos: ${roundsDone} rounds, ${overlap.started} rotations, ${chaos.faults} faults, ${violations.length} violations`,
    );
    console.log(`leaks: ${leakFindings.size}`);
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

/** The failpoint a worker announced on stderr just before it SIGKILLed itself, if any. */
function firedFailpoint(logFile: string): { name: string; account: string } | null {
  if (!existsSync(logFile)) return null;
  // Each process logs to its own file, so the note in it is the point that killed it.
  const all = [...readFileSync(logFile, 'utf8').matchAll(/failpoint (\S+) \(account (\S+?)\): SIGKILL/g)];
  const m = all.at(-1);
  return m ? { name: m[1] as string, account: m[2] as string } : null;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(2);
  },
);
