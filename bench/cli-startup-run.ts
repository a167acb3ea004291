import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { scramVerifier } from '../src/core/scram/scram-verifier.js';
import { freePort } from '../test/support/free-port.js';
import { startPgServer, stopPgServer } from '../test/support/pg-server.js';
import { measureCli } from './cli-startup.js';
import { repoRoot } from './repo-root.js';

// The CLI start-up figures of `npm run bench` on their own, without the rotation runs, OpenBao or
// the peer: `node dist-bench/bench/cli-startup-run.js [--help-runs 9] [--rotate-runs 9]`. It
// starts its own PostgreSQL 15 (scram-sha-256, no statement log) and prints the figures as JSON,
// with the 1-minute load average before and after, since the machine's load moves them most.

const { values: args } = parseArgs({
  options: {
    'help-runs': { type: 'string', default: '9' },
    'rotate-runs': { type: 'string', default: '9' },
  },
});

const server = startPgServer({ label: 'cli-bench', binDir: '/usr/lib/postgresql/15/bin', port: await freePort() });
try {
  const adminPw = `bench-${randomBytes(12).toString('base64url')}-admin`;
  const su = new pg.Client({
    host: server.host,
    port: server.port,
    user: server.superuser,
    password: server.superPassword,
    database: 'postgres',
  });
  await su.connect();
  await su.query(`CREATE ROLE bench_rotator LOGIN CREATEROLE PASSWORD '${await scramVerifier(adminPw)}'`);
  await su.query('CREATE DATABASE bench_target');
  await su.query('CREATE DATABASE bench_state OWNER bench_rotator');
  await su.end();
  const rot = new pg.Client({
    host: server.host,
    port: server.port,
    user: 'bench_rotator',
    password: adminPw,
    database: 'bench_target',
  });
  await rot.connect();
  await rot.query('CREATE ROLE bench_cli_one LOGIN');
  await rot.end();
  const loadBefore = loadavg()[0] as number;
  const figures = measureCli({
    repoRoot: repoRoot(),
    state: { host: server.host, port: server.port, database: 'bench_state', user: 'bench_rotator' },
    target: { host: server.host, port: server.port, database: 'bench_target', user: 'bench_rotator' },
    adminPassword: adminPw,
    role: 'bench_cli_one',
    helpRuns: Number(args['help-runs']),
    rotateRuns: Number(args['rotate-runs']),
  });
  const loadAfter = loadavg()[0] as number;
  const pgVersion = readFileSync(join(server.dataDir, 'PG_VERSION'), 'utf8').trim();
  console.log(JSON.stringify({ ...figures, load_1m: [loadBefore, loadAfter], postgres: pgVersion }));
} finally {
  stopPgServer(server);
}
