import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';
import type { PgServerInfo } from './pg-server.js';

// A real PgBouncer (Debian's package, scripts/install/15-pgbouncer.sh) in front of a test
// server, one process per test file: it starts in milliseconds. As root it runs as postgres
// (PgBouncer refuses root), so its directory and files belong to postgres.

export const PGBOUNCER_BIN = '/usr/sbin/pgbouncer';

export interface PgbouncerServer {
  host: string;
  port: number;
  dir: string;
  authFile: string;
  logFile: string;
  adminUser: string;
  adminPassword: string;
  /** The admin console (simple query protocol only). */
  admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T>;
  /** Does `user` log in to `database` through this PgBouncer with `password`? */
  canLogin(user: string, password: string, database: string): Promise<boolean>;
  stop(): Promise<void>;
}

export interface PgbouncerOptions {
  /** auth_file (pgrotate writes the rotated roles' lines) or auth_query through auth_user. */
  mode: 'file' | 'query';
  /** auth_query in query mode (default: the common pg_shadow query, which ignores valuntil). */
  authQuery?: string;
  poolMode?: 'session' | 'transaction';
}

/** The auth_query operators commonly set: it ignores valuntil. */
export const COMMON_AUTH_QUERY = 'SELECT usename, passwd FROM pg_shadow WHERE usename=$1';

function toPostgres(path: string): void {
  if (userInfo().uid !== 0) return;
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  chownSync(path, uid, gid);
}

/** Start a PgBouncer for every database of `server`. */
export async function startPgbouncer(server: PgServerInfo, opts: PgbouncerOptions): Promise<PgbouncerServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-pgb-'));
  toPostgres(dir);
  const port = await freePort();
  const authFile = join(dir, 'userlist.txt');
  const logFile = join(dir, 'pgbouncer.log');
  const adminUser = 'pgb_admin';
  const adminPassword = `pgb-admin-${port}-pw`;
  // The admin's line is plain text (PgBouncer accepts it for SCRAM); the auth_user's must be,
  // for PgBouncer to log in to the server with it. A comment and an unrelated user stay put.
  const lines = ['; managed partly by pgrotate', `"${adminUser}" "${adminPassword}"`, '"someone_else" "md5deadbeef"'];
  if (opts.mode === 'query') lines.push(`"${server.superuser}" "${server.superPassword}"`);
  writeFileSync(authFile, `${lines.join('\n')}\n`, { mode: 0o640 });
  toPostgres(authFile);
  const ini = [
    '[databases]',
    `* = host=${server.host} port=${server.port}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = scram-sha-256',
    `auth_file = ${authFile}`,
    `admin_users = ${adminUser}`,
    `pool_mode = ${opts.poolMode ?? 'transaction'}`,
    `logfile = ${logFile}`,
    'server_login_retry = 1',
    'max_client_conn = 200',
    ...(opts.mode === 'query'
      ? [`auth_user = ${server.superuser}`, `auth_query = ${opts.authQuery ?? COMMON_AUTH_QUERY}`]
      : []),
  ];
  const iniFile = join(dir, 'pgbouncer.ini');
  writeFileSync(iniFile, `${ini.join('\n')}\n`);
  toPostgres(iniFile);
  const asRoot = userInfo().uid === 0;
  const child: ChildProcess = spawn(PGBOUNCER_BIN, [...(asRoot ? ['-u', 'postgres'] : []), iniFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const connect = async (user: string, password: string, database: string) => {
    const c = new pg.Client({ host: '127.0.0.1', port, user, password, database, connectionTimeoutMillis: 5000 });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      (await connect(adminUser, adminPassword, 'pgbouncer')).end().catch(() => undefined);
      break;
    } catch (err) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`pgbouncer did not start: ${String(err)}\n${stderr}\n${safeRead(logFile)}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    host: '127.0.0.1',
    port,
    dir,
    authFile,
    logFile,
    adminUser,
    adminPassword,
    async admin(fn) {
      const c = await connect(adminUser, adminPassword, 'pgbouncer');
      try {
        return await fn(c);
      } finally {
        await c.end().catch(() => undefined);
      }
    },
    async canLogin(user, password, database) {
      try {
        const c = await connect(user, password, database);
        try {
          await c.query('SELECT 1');
        } finally {
          await c.end().catch(() => undefined);
        }
        return true;
      } catch {
        return false;
      }
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
