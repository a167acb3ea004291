import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

// An HTTP proxy in front of a real store server (OpenBao) that records each call that crosses it
// (method and path, without bodies) and the TCP connections clients open to it, so cost tests
// count store calls and connections per rotation. `before` may act on a call before it is
// forwarded (let another writer in between two calls of the client under test, or fail the call
// with a 502 by throwing).

export interface CountingHttpProxy {
  address: string;
  /** Calls since the last reset, in order, as "METHOD /path". */
  readonly calls: string[];
  /** The same calls with when they arrived and when their answer was complete (performance.now()). */
  readonly timings: Array<{ call: string; start: number; end: number; status?: number }>;
  /** TCP connections clients opened to the proxy since the last reset. */
  readonly connections: number;
  /** Client connections open now (idle kept-alive ones included). */
  readonly openConnections: number;
  /** Awaited before a call is forwarded; a throw answers the call with HTTP 502 instead. */
  before: ((method: string, path: string) => Promise<void>) | null;
  reset(): void;
  /** Close every client connection now (a server dropping its idle kept-alive connections). */
  dropConnections(): void;
  close(): Promise<void>;
}

/** Start a counting proxy to `upstream` (http://host:port) on a free local port. */
export async function startCountingHttpProxy(upstream: string): Promise<CountingHttpProxy> {
  const target = new URL(upstream);
  const calls: string[] = [];
  const timings: Array<{ call: string; start: number; end: number; status?: number }> = [];
  const server: Server = createServer((req, res) => {
    const call = `${req.method ?? '?'} ${req.url ?? ''}`;
    calls.push(call);
    const timing: { call: string; start: number; end: number; status?: number } = {
      call,
      start: performance.now(),
      end: Number.NaN,
    };
    timings.push(timing);
    res.on('finish', () => {
      timing.end = performance.now();
      timing.status = res.statusCode;
    });
    if (!proxy.before) return forward(req, res, target);
    // The request body waits (paused) in the stream until it is piped on.
    proxy.before(req.method ?? '?', req.url ?? '').then(
      () => forward(req, res, target),
      () => {
        res.writeHead(502);
        res.end();
      },
    );
  });
  let connections = 0;
  let openConnections = 0;
  server.on('connection', (socket) => {
    connections++;
    openConnections++;
    socket.on('close', () => openConnections--);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const proxy: CountingHttpProxy = {
    address: `http://127.0.0.1:${port}`,
    calls,
    timings,
    get connections() {
      return connections;
    },
    get openConnections() {
      return openConnections;
    },
    before: null,
    reset() {
      calls.length = 0;
      timings.length = 0;
      connections = 0;
    },
    dropConnections() {
      server.closeAllConnections();
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}

/** Pass one call on to the upstream server and its answer back. */
function forward(req: IncomingMessage, res: ServerResponse, target: URL): void {
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
}
