import { createServer as createHttpServer, request, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { VaultClient } from '../../providers/vault/vault-client.js';
import type { BaoServerInfo } from '../support/bao-server.js';
import { service } from '../support/provided.js';

// The vault provider's HTTP client (node:http with kept-alive connections) against real OpenBao,
// with the two network conditions a pooled connection meets: a server that drops a kept-alive
// connection just as the client reuses it (the request never reached it: sent again on a new
// connection), and a standby node that redirects to the active one (307, followed with the token).

const bao = () => service<BaoServerInfo>('bao');

/** A TCP proxy to OpenBao that, on each connection, passes `passes` requests and then drops the connection unanswered. */
async function droppingProxy(passes: number): Promise<{ port: number; connections: number; close(): Promise<void> }> {
  const upstream = new URL(bao().address);
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: TcpServer = createTcpServer((client) => {
    connections++;
    sockets.add(client);
    let requests = 0;
    let answering = false;
    // One request at a time (the client sends the next only after an answer): count request
    // starts by their first chunk after an answer.
    client.on('data', (chunk: Buffer) => {
      if (answering) return;
      requests++;
      if (requests > passes) {
        client.destroy();
        return;
      }
      answering = true;
      const fwd = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: chunk.toString('latin1').split(' ')[0],
          path: chunk.toString('latin1').split(' ')[1],
          headers: headersOf(chunk),
        },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => {
            client.write(
              `HTTP/1.1 ${res.statusCode} OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: keep-alive\r\n\r\n${body}`,
            );
            answering = false;
          });
        },
      );
      fwd.end();
    });
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get connections() {
      return connections;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Header lines of a bodiless request's first chunk. */
function headersOf(chunk: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of chunk.toString('latin1').split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  delete out.host;
  return out;
}

describe('vault client: kept-alive connections against OpenBao', () => {
  const closers: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of closers) await c();
  });

  it('a kept-alive connection dropped as it is reused: the call is sent again on a new connection and succeeds', async () => {
    const proxy = await droppingProxy(1);
    closers.push(() => proxy.close());
    const client = new VaultClient({ address: `http://127.0.0.1:${proxy.port}`, timeoutMs: 5000, provider: 'bao' });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await client.send('GET', 'auth/token/lookup-self', { token: bao().rootToken });
        expect((res.data as { id?: string }).id).toBe(bao().rootToken);
      }
      // Each connection serves one request: the 2nd and 3rd calls find theirs dropped and open a new one.
      expect(proxy.connections).toBe(3);
      // Several idle pooled connections, all dropped (a server restart): the call tries each, then a new one.
      const lookup = () => client.send('GET', 'auth/token/lookup-self', { token: bao().rootToken });
      await Promise.all([lookup(), lookup(), lookup(), lookup()]);
      const before = proxy.connections;
      expect(((await lookup()).data as { id?: string }).id).toBe(bao().rootToken);
      expect(proxy.connections).toBeGreaterThan(before);
    } finally {
      client.close();
    }
  });

  it('a 307 redirect (a standby node) is followed with the token', async () => {
    let redirected = 0;
    const standby: Server = createHttpServer((req, res) => {
      redirected++;
      res.writeHead(307, { Location: `${bao().address}${req.url ?? ''}` });
      res.end();
    });
    await new Promise<void>((resolve) => standby.listen(0, '127.0.0.1', resolve));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          standby.closeAllConnections();
          standby.close(() => resolve());
        }),
    );
    const port = (standby.address() as { port: number }).port;
    const client = new VaultClient({ address: `http://127.0.0.1:${port}`, timeoutMs: 5000, provider: 'bao' });
    try {
      const secret = `transport-${Date.now()}/redirect`;
      await client.send('POST', `secret/data/${secret}`, { token: bao().rootToken, body: { data: { a: '1' } } });
      const read = await client.send('GET', `secret/data/${secret}`, { token: bao().rootToken });
      expect((read.data as { data: { a: string } }).data.a).toBe('1');
      expect(redirected).toBe(2);
    } finally {
      client.close();
    }
  });
});
