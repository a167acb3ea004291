import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a test webhook received. */
export interface Received {
  at: number;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  status: number;
}

/**
 * A webhook receiver on 127.0.0.1 answering with the given statuses in turn (then the last one, or
 * 200); on `port` when given (a receiver that comes up where a webhook was already configured).
 */
export async function startWebhookReceiver(
  statuses: number[] = [],
  opts: { port?: number } = {},
): Promise<{
  url: string;
  received: Received[];
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}> {
  const received: Received[] = [];
  let n = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const status = statuses[n] ?? statuses[statuses.length - 1] ?? 200;
      n++;
      received.push({ at: Date.now(), path: req.url ?? '/', headers: req.headers, body, status });
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    async waitFor(count, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      return received;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
