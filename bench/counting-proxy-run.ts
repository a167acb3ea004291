import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ProxyCommand, ProxyMessage } from './counting-proxy.js';

// The parent's side of bench/counting-proxy.ts: fork the proxy, learn its port, and ask it for
// its request count at each mark of a timed stretch (one IPC round trip, no work in this process
// per proxied byte).

export interface CountingProxy {
  port: number;
  /** The proxy's process id (its CPU is nobody's in the figures). */
  pid: number;
  /** HTTP requests forwarded so far. */
  httpRequests(): Promise<number>;
  close(): Promise<void>;
}

/** Fork a counting TCP proxy to host:port and resolve once it listens. */
export async function startCountingProxy(target: { host: string; port: number }): Promise<CountingProxy> {
  const child = fork(fileURLToPath(new URL('./counting-proxy.js', import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waiting = new Map<number, (n: number) => void>();
  let nextId = 0;
  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (m: ProxyMessage) => {
      if (m.type === 'ready') resolve(m.port);
      if (m.type === 'error') reject(new Error(`counting proxy: ${m.message}`));
      if (m.type === 'count') {
        waiting.get(m.id)?.(m.requests);
        waiting.delete(m.id);
      }
    });
    child.once('exit', (code) => reject(new Error(`counting proxy exited (${code}) before it listened`)));
    child.send({ type: 'start', ...target } satisfies ProxyCommand);
  });
  return {
    port,
    pid: child.pid ?? 0,
    httpRequests() {
      return new Promise<number>((resolve, reject) => {
        if (!child.connected) return reject(new Error('counting proxy: no longer running'));
        const id = nextId++;
        waiting.set(id, resolve);
        child.send({ type: 'count', id } satisfies ProxyCommand);
      });
    },
    async close() {
      // A proxy already exiting is no error (send's callback takes the EPIPE, not an 'error' event).
      if (child.connected) child.send({ type: 'stop' } satisfies ProxyCommand, () => undefined);
      await exited;
    },
  };
}
