import type { StartedService } from '../global-setup.js';
import { startBaoServer, type BaoServerInfo } from '../support/bao-server.js';

// One OpenBao dev server per test run (service name `bao`); tests that need to break a server
// (seal it) start their own with startBaoServer.

export const names = ['bao'];

export async function start(wanted: (name: string) => boolean): Promise<Record<string, StartedService>> {
  if (!wanted('bao')) return {};
  const server = await startBaoServer({ label: 'service' });
  const info: BaoServerInfo = {
    address: server.address,
    rootToken: server.rootToken,
    bin: server.bin,
    pid: server.pid,
  };
  return { bao: { info, stop: () => server.stop() } };
}
