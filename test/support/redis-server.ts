import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A throwaway Redis server (Debian's redis-server) without persistence, daemonized with a pid
// file so that any process of the test run (a test file restarting it, the global teardown
// stopping it) can find the current server.

export interface RedisServerInfo {
  host: string;
  port: number;
  dir: string;
  pidFile: string;
}

const BINARY = '/usr/bin/redis-server';

async function ping(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host, port });
    sock.setTimeout(500);
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      sock.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    sock.on('error', () => resolve(false));
    sock.on('timeout', () => {
      sock.destroy();
      resolve(false);
    });
  });
}

async function waitFor(cond: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis: timed out waiting for ${what}`);
}

function launch(info: RedisServerInfo): void {
  const res = spawnSync(
    BINARY,
    [
      '--port',
      String(info.port),
      '--bind',
      info.host,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'yes',
      '--pidfile',
      info.pidFile,
      '--dir',
      info.dir,
      '--logfile',
      join(info.dir, 'redis.log'),
    ],
    { encoding: 'utf8' },
  );
  if (res.status !== 0) throw new Error(`redis-server failed to start: ${res.stderr}${res.stdout}`);
}

function currentPid(info: RedisServerInfo): number | null {
  if (!existsSync(info.pidFile)) return null;
  const pid = Number(readFileSync(info.pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** Start a server on `port`; resolves when it answers PING. */
export async function startRedisServer(port: number): Promise<RedisServerInfo> {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} not found; run scripts/install/20-redis.sh`);
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-redis-'));
  const info: RedisServerInfo = { host: '127.0.0.1', port, dir, pidFile: join(dir, 'redis.pid') };
  launch(info);
  await waitFor(() => ping(info.host, port), 'the first PING');
  return info;
}

/** Kill the server (SIGKILL: like a crash; no persistence, so its data is gone). */
export async function killRedisServer(info: RedisServerInfo): Promise<void> {
  const pid = currentPid(info);
  if (pid) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(info.pidFile, { force: true });
  await waitFor(async () => !(await ping(info.host, info.port)), 'the server to stop');
}

/** Kill and start again on the same port (an empty server, as after a crash without persistence). */
export async function restartRedisServer(info: RedisServerInfo, downMs = 0): Promise<void> {
  await killRedisServer(info);
  if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
  launch(info);
  await waitFor(() => ping(info.host, info.port), 'PING after restart');
}

/** Stop for good and remove its directory. */
export async function stopRedisServer(info: RedisServerInfo): Promise<void> {
  await killRedisServer(info).catch(() => undefined);
  rmSync(info.dir, { recursive: true, force: true });
}
