import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { TargetConfig } from '../src/core/config/config-schema.js';
import { Redactor } from '../src/core/logging/redactor.js';
import { TargetConnector } from '../src/core/pg/target-connector.js';
import { scramVerifier } from '../src/core/scram/scram-verifier.js';
import { freePort } from '../test/support/free-port.js';
import { startPgServer, stopPgServer } from '../test/support/pg-server.js';
import { treeCpuMs } from './process-cpu.js';

// Issue 16: the pre-flight probe of the login path, before and after. "old" is what the probe
// was (a login as the role with a random wrong password, through node-postgres: a SCRAM exchange
// with PBKDF2 in this process and a failed login in the server log); "new" is the password-less
// probe (startup message, first authentication answer, hang-up). Both run N times one after the
// other against a PostgreSQL 15 of their own, in interleaved rounds. Reported per probe: wall
// time, CPU in this process, CPU of the server (postmaster and its reaped backends), and the
// failed logins the server logged.
//
//   npm run build && npm run build:bench && node dist-bench/bench/login-path-probe-bench.js [N] [rounds]

const N = Number(process.argv[2] ?? 200);
const ROUNDS = Number(process.argv[3] ?? 3);
const ROLE = 'probe_bench_app';

interface Figures {
  wallMsPerProbe: number;
  clientCpuMsPerProbe: number;
  serverCpuMsPerProbe: number;
  failedLoginsLogged: number;
}

function postmasterPid(dataDir: string): number {
  return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

async function main(): Promise<void> {
  const server = startPgServer({ label: 'probe-bench', binDir: '/usr/lib/postgresql/15/bin', port: await freePort() });
  try {
    const su = new pg.Client({
      host: server.host,
      port: server.port,
      user: server.superuser,
      password: server.superPassword,
      database: 'postgres',
    });
    await su.connect();
    await su.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${await scramVerifier('probe-bench-app-password')}'`);
    await su.end();
    const target = {
      host: server.host,
      port: server.port,
      database: 'postgres',
      sslmode: 'disable',
      connectTimeout: 10_000,
    } as unknown as TargetConfig;
    const connector = new TargetConnector({
      targets: { main: target },
      resolveAdmin: async () => ({ username: server.superuser, password: server.superPassword }),
      redactor: new Redactor(),
    });
    const pid = postmasterPid(server.dataDir);
    const kinds = {
      old: async () => {
        const r = await connector.tryLogin('main', ROLE, 'pgrotate-probe-wrong-password', 'pgrotate-preflight');
        if (r.ok || r.refusal !== 'password') throw new Error(`old probe: ${JSON.stringify(r)}`);
      },
      new: async () => {
        const r = await connector.probeLoginPath('main', ROLE);
        if (!r.open) throw new Error(`new probe: ${JSON.stringify(r)}`);
      },
    };
    const failedLogins = () =>
      (readFileSync(server.logFile, 'utf8').match(/password authentication failed for user/g) ?? []).length;
    const run = async (fn: () => Promise<void>): Promise<Figures> => {
      const failed0 = failedLogins();
      const server0 = treeCpuMs(pid, { reaped: true });
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < N; i++) await fn();
      const wall = Number(process.hrtime.bigint() - t0) / 1e6;
      const cpu = process.cpuUsage(cpu0);
      // Let the last backends exit and be reaped, so their CPU is in the postmaster's cutime.
      await new Promise((r) => setTimeout(r, 500));
      return {
        wallMsPerProbe: wall / N,
        clientCpuMsPerProbe: (cpu.user + cpu.system) / 1000 / N,
        serverCpuMsPerProbe: (treeCpuMs(pid, { reaped: true }) - server0) / N,
        failedLoginsLogged: failedLogins() - failed0,
      };
    };
    for (const fn of Object.values(kinds)) for (let i = 0; i < 10; i++) await fn(); // warm-up
    const results: Record<string, Figures[]> = { old: [], new: [] };
    for (let round = 0; round < ROUNDS; round++)
      for (const [name, fn] of Object.entries(kinds)) results[name]?.push(await run(fn));
    await connector.close();
    const fmt = (x: number) => x.toFixed(2);
    console.log(`${N} probes x ${ROUNDS} interleaved rounds, sequential, PostgreSQL 15 on 127.0.0.1`);
    console.log('probe | wall ms/probe | client CPU ms/probe | server CPU ms/probe | failed logins logged');
    for (const [name, rounds] of Object.entries(results))
      for (const r of rounds)
        console.log(
          `${name} | ${fmt(r.wallMsPerProbe)} | ${fmt(r.clientCpuMsPerProbe)} | ${fmt(r.serverCpuMsPerProbe)} | ${r.failedLoginsLogged}`,
        );
    console.log(JSON.stringify(results));
  } finally {
    stopPgServer(server);
  }
}

await main();
