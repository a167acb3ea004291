import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runCli } from '../../src/entry/cli/main.js';
import { quoteIdent } from '../../src/core/pg/quote.js';
import { scramVerifier } from '../../src/core/scram/scram-verifier.js';
import type { PgServerInfo } from './pg-server.js';

// One isolated world per test file or test: its own target database, state database, a
// least-privilege rotator login (CREATEROLE, not superuser) and uniquely named roles, on a
// server shared by the whole run.

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(REPO_ROOT, 'dist', 'src', 'entry', 'cli', 'main.js');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface PgFixture {
  server: PgServerInfo;
  suffix: string;
  targetDb: string;
  stateDb: string;
  rotator: string;
  rotatorPassword: string;
  dir: string;
  /** A new connection as the superuser. */
  superClient(db?: string): Promise<pg.Client>;
  /** A connection as the rotator (non-superuser admin). */
  rotatorClient(db?: string): Promise<pg.Client>;
  /** One statement in the state database as the superuser: tests inspect pgrotate's tables directly (pgrotate's pool is private). */
  stateQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /** Create a LOGIN role (as the rotator, so it also has ADMIN on 16+); returns its name. */
  createRole(name: string, opts?: { superuser?: boolean; password?: string; inRole?: string }): Promise<string>;
  /** Does `role` log in to the target database with `password`? */
  canLogin(role: string, password: string): Promise<boolean>;
  /** Write a config file (JSON is YAML) and return its path and the env it needs. */
  writeConfig(parts: {
    accounts: unknown[];
    providers?: Record<string, unknown>;
    defaults?: Record<string, unknown>;
    targetExtra?: Record<string, unknown>;
    /** Further top-level keys (http, alerts, queue, …), merged last. */
    extra?: Record<string, unknown>;
  }): { path: string; env: NodeJS.ProcessEnv };
  /** Path of a file provider store in this fixture's directory. */
  secretsFile: string;
  /** Run the CLI in-process. */
  cli(args: string[], env: NodeJS.ProcessEnv): Promise<CliRun>;
  /** Run the built CLI as a child process (for crash tests). */
  cliProcess(args: string[], env: NodeJS.ProcessEnv): Promise<CliRun & { signal: NodeJS.Signals | null }>;
  cleanup(): Promise<void>;
}

/** Random lowercase suffix for names that are global in a cluster (roles, databases). */
export function uniqueSuffix(): string {
  return randomBytes(5).toString('hex');
}

export async function createPgFixture(server: PgServerInfo): Promise<PgFixture> {
  const suffix = uniqueSuffix();
  const targetDb = `t_${suffix}`;
  const stateDb = `s_${suffix}`;
  const rotator = `rot_${suffix}`;
  const rotatorPassword = randomBytes(18).toString('base64url');
  const dir = mkdtempSync(join(tmpdir(), `pgrotate-fx-${suffix}-`));
  const secretsFile = join(dir, 'secrets.json');
  const connect = async (user: string, password: string, database: string) => {
    const c = new pg.Client({ host: server.host, port: server.port, user, password, database });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };
  const superClient = (db = 'postgres') => connect(server.superuser, server.superPassword, db);
  const rotatorClient = (db = targetDb) => connect(rotator, rotatorPassword, db);

  const su = await superClient();
  try {
    await su.query(
      `CREATE ROLE ${quoteIdent(rotator)} LOGIN CREATEROLE PASSWORD '${await scramVerifier(rotatorPassword)}'`,
    );
    await su.query(`CREATE DATABASE ${quoteIdent(targetDb)}`);
    await su.query(`CREATE DATABASE ${quoteIdent(stateDb)} OWNER ${quoteIdent(rotator)}`);
  } finally {
    await su.end();
  }
  const created: string[] = [];

  const fx: PgFixture = {
    server,
    suffix,
    targetDb,
    stateDb,
    rotator,
    rotatorPassword,
    dir,
    secretsFile,
    superClient,
    rotatorClient,
    async stateQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = []) {
      const c = await superClient(stateDb);
      try {
        return await c.query<R>(text, values);
      } finally {
        await c.end();
      }
    },
    async createRole(name, opts = {}) {
      const password = opts.password ? ` PASSWORD '${await scramVerifier(opts.password)}'` : '';
      const inRole = opts.inRole ? ` IN ROLE ${quoteIdent(opts.inRole)}` : '';
      const c = opts.superuser ? await superClient() : await rotatorClient('postgres');
      try {
        await c.query(`CREATE ROLE ${quoteIdent(name)} LOGIN${opts.superuser ? ' SUPERUSER' : ''}${password}${inRole}`);
      } finally {
        await c.end();
      }
      created.push(name);
      return name;
    },
    async canLogin(role, password) {
      try {
        const c = await connect(role, password, targetDb);
        await c.end();
        return true;
      } catch {
        return false;
      }
    },
    writeConfig(parts) {
      const path = join(dir, `pgrotate-${uniqueSuffix()}.yaml`);
      const config = {
        state: {
          url: `postgres://${rotator}@${server.host}:${server.port}/${stateDb}`,
          password: 'env:TEST_ROTATOR_PASSWORD',
        },
        providers: parts.providers ?? { local: { type: 'file', path: secretsFile } },
        targets: {
          main: {
            host: server.host,
            port: server.port,
            database: targetDb,
            sslmode: 'disable',
            admin: { username: rotator, password: 'env:TEST_ROTATOR_PASSWORD' },
            ...parts.targetExtra,
          },
        },
        ...(parts.defaults ? { defaults: parts.defaults } : {}),
        accounts: parts.accounts,
        ...parts.extra,
      };
      writeFileSync(path, JSON.stringify(config, null, 2), { mode: 0o600 });
      return { path, env: { ...process.env, TEST_ROTATOR_PASSWORD: rotatorPassword, PGROTATE_LOG_LEVEL: 'info' } };
    },
    async cli(args, env) {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let out = '';
      let err = '';
      stdout.on('data', (d: Buffer) => (out += d.toString()));
      stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = await runCli(args, { stdout, stderr, env, cwd: dir });
      return { code, stdout: out, stderr: err };
    },
    cliProcess(args, env) {
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [CLI, ...args], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', reject);
        child.on('close', (code, signal) => resolve({ code: code ?? -1, signal, stdout: out, stderr: err }));
      });
    },
    async cleanup() {
      const c = await superClient();
      try {
        for (const db of [targetDb, stateDb])
          await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(db)} WITH (FORCE)`).catch(() => undefined);
        for (const role of created.reverse())
          await c.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`).catch(() => undefined);
        await c.query(`DROP ROLE IF EXISTS ${quoteIdent(rotator)}`).catch(() => undefined);
      } finally {
        await c.end();
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fx;
}
