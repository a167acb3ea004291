import { createServer, request, type Server } from 'node:http';

// An HTTP proxy in front of a real store server (OpenBao) that records each call that crosses it
// (method and path, without bodies), so cost tests count store calls per rotation.

export interface CountingHttpProxy {
  address: string;
  /** Calls since the last reset, in order, as "METHOD /path". */
  readonly calls: string[];
  /** The same calls with when they arrived and when their answer was complete (performance.now()). */
  readonly timings: Array<{ call: string; start: number; end: number }>;
  reset(): void;
  close(): Promise<void>;
}

/** Start a counting proxy to `upstream` (http://host:port) on a free local port. */
export async function startCountingHttpProxy(upstream: string): Promise<CountingHttpProxy> {
  const target = new URL(upstream);
  const calls: string[] = [];
  const timings: Array<{ call: string; start: number; end: number }> = [];
  const server: Server = createServer((req, res) => {
    const call = `${req.method ?? '?'} ${req.url ?? ''}`;
    calls.push(call);
    const timing = { call, start: performance.now(), end: Number.NaN };
    timings.push(timing);
    res.on('finish', () => (timing.end = performance.now()));
    const fwd = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    address: `http://127.0.0.1:${port}`,
    calls,
    timings,
    reset() {
      calls.length = 0;
      timings.length = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
