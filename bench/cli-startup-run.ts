import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { stringify as stringifyYaml } from 'yaml';
import { scramVerifier } from '../src/core/scram/scram-verifier.js';
import { freePort } from '../test/support/free-port.js';
import { startPgServer, stopPgServer } from '../test/support/pg-server.js';
import { measureCli, type CliFigures } from './cli-startup.js';
import { repoRoot } from './repo-root.js';

// The CLI start-up figures of `npm run bench` on their own, without the rotation runs, OpenBao or
// the peer: `node dist-bench/bench/cli-startup-run.js [--runs 9] [--yaml] [--repos DIR,DIR]`.
// It starts its own PostgreSQL 15 and prints, per checkout (each with a built dist/), the
// median of `--runs` runs of `--help` and of `rotate` of one account with the file provider.
// With several checkouts (before/after a change) the runs alternate between them, so a machine
// whose load changes during the run weighs on each alike. The 1-minute load average is printed
// with the figures, since on a shared machine it moves them most.

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '9' },
    yaml: { type: 'boolean', default: false },
    repos: { type: 'string' },
  },
});
const RUNS = Number(args.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error('--runs must be a positive whole number');
const repos = args.repos ? args.repos.split(',').map((r) => resolve(r)) : [repoRoot()];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const server = startPgServer({ label: 'cli-bench', binDir: '/usr/lib/postgresql/15/bin', port: await freePort() });
try {
  const adminPw = `bench-${randomBytes(12).toString('base64url')}-admin`;
  const connect = async (user: string, password: string, database: string) => {
    const c = new pg.Client({ host: server.host, port: server.port, user, password, database });
    await c.connect();
    return c;
  };
  const su = await connect(server.superuser, server.superPassword, 'postgres');
  await su.query(`CREATE ROLE bench_rotator LOGIN CREATEROLE PASSWORD '${await scramVerifier(adminPw)}'`);
  await su.query('CREATE DATABASE bench_target');
  await su.query('CREATE DATABASE bench_state OWNER bench_rotator');
  await su.end();
  const rot = await connect('bench_rotator', adminPw, 'bench_target');
  await rot.query('CREATE ROLE bench_cli_one LOGIN');
  await rot.end();

  const loads: number[] = [];
  const figures = new Map<string, CliFigures[]>(repos.map((r) => [r, []]));
  for (let i = 0; i < RUNS; i++) {
    for (const repo of repos) {
      loads.push(loadavg()[0] as number);
      figures.get(repo)?.push(
        measureCli({
          repoRoot: repo,
          state: { host: server.host, port: server.port, database: 'bench_state', user: 'bench_rotator' },
          target: { host: server.host, port: server.port, database: 'bench_target', user: 'bench_rotator' },
          adminPassword: adminPw,
          role: 'bench_cli_one',
          helpRuns: 1,
          rotateRuns: 1,
          ...(args.yaml ? { yaml: (value: unknown) => stringifyYaml(value) } : {}),
        }),
      );
    }
  }
  const round = (n: number) => Math.round(n * 10) / 10;
  const out = [...figures].map(([repo, fs]) => ({
    repo,
    config: args.yaml ? 'yaml' : 'json',
    runs: fs.length,
    cli_help_ms: round(median(fs.map((f) => f.cli_help_ms))),
    cli_help_rss_mb: round(Math.max(...fs.map((f) => f.cli_help_rss_mb))),
    cli_rotate_one_ms: round(median(fs.map((f) => f.cli_rotate_one_ms))),
    rotate_one_runs_ms: fs.map((f) => Math.round(f.cli_rotate_one_ms)),
  }));
  console.log(JSON.stringify({ results: out, load_1m: { min: Math.min(...loads), max: Math.max(...loads) } }, null, 1));
} finally {
  stopPgServer(server);
}
