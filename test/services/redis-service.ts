import type { StartedService } from '../global-setup.js';
import { freePort } from '../support/free-port.js';
import { startRedisServer, stopRedisServer } from '../support/redis-server.js';

// Redis for the BullMQ Redis backend tests: one server per run, no persistence, on a free
// port. Its info (host, port, pid file) lets a test restart it (test/support/redis-server.ts).

export const names = ['redis'];

export async function start(wanted: (name: string) => boolean): Promise<Record<string, StartedService>> {
  if (!wanted('redis')) return {};
  const info = await startRedisServer(await freePort());
  return { redis: { info, stop: () => stopRedisServer(info) } };
}
