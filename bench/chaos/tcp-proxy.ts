import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { HttpRequestCounter } from '../http-request-counter.js';

// A loopback TCP proxy in front of a server (OpenBao), so the chaos harness can make it
// unreachable (connections reset) or slow (connections accepted, nothing forwarded: requests
// hang until the client's own timeout) without touching the server itself. `npm run bench` puts
// one in front of OpenBao to count the HTTP requests pgrotate makes (store calls per rotation).

export type ProxyMode = 'pass' | 'refuse' | 'stall';

export interface TcpProxy {
  port: number;
  setMode(mode: ProxyMode): void;
  /** Connections accepted while stalling (each one a request that had to time out). */
  stalled(): number;
  /** HTTP requests forwarded so far (the benchmark's count of store calls). */
  httpRequests(): number;
  close(): Promise<void>;
}

/** Listen on a free loopback port and forward to host:port. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: ProxyMode = 'pass';
  let stalledCount = 0;
  let closedRequests = 0;
  const counters = new Set<HttpRequestCounter>();
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => undefined);
    if (mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    if (mode === 'stall') {
      stalledCount++;
      // Read and drop; the client gives up by its own timeout. Closed after a minute at most.
      client.resume();
      client.setTimeout(60_000, () => client.destroy());
      return;
    }
    const upstream = createConnection(target);
    open.add(upstream);
    upstream.on('close', () => open.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    // A connection that was open when stalling began goes silent too (its request is lost in
    // the network, as far as the client can tell), and stays silent.
    let silent = false;
    const counter = new HttpRequestCounter();
    counters.add(counter);
    client.on('close', () => {
      closedRequests += counter.count;
      counters.delete(counter);
    });
    client.on('data', (chunk: Buffer) => {
      if (mode === 'stall' && !silent) {
        silent = true;
        stalledCount++;
        client.setTimeout(60_000, () => client.destroy());
      }
      if (silent) return;
      counter.push(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!silent) client.write(chunk);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    setMode(next) {
      mode = next;
      // Established keep-alive connections would bypass a refusal: cut them (a server that went away).
      if (next === 'refuse') for (const s of open) s.destroy();
    },
    stalled: () => stalledCount,
    httpRequests: () => closedRequests + [...counters].reduce((n, c) => n + c.count, 0),
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
