import { connect, createServer, type Server, type Socket } from 'node:net';

// A TCP proxy whose server side says goodbye late: when the server closes a connection, the
// close (FIN) is passed on to the client only after release(). It stands in for a machine so busy
// that a PostgreSQL backend's exit lags behind the client's work, deterministically: a client
// that does not wait for the goodbye (pgrotate's verify login) keeps its connection object until
// then, and a heap test must see what that object still holds (issue 24.6).

export interface SlowGoodbyeProxy {
  host: string;
  port: number;
  /** Goodbyes held back now. */
  readonly held: number;
  /** Pass on every held goodbye, and every later one at once. */
  release(): void;
  close(): Promise<void>;
}

/** Start a proxy to `upstream` on a free loopback port. */
export async function startSlowGoodbyeProxy(upstream: { host: string; port: number }): Promise<SlowGoodbyeProxy> {
  const heldBack: Socket[] = [];
  const open = new Set<Socket>();
  let released = false;
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    const up = connect({ host: upstream.host, port: upstream.port, allowHalfOpen: true });
    open.add(client);
    open.add(up);
    client.on('close', () => open.delete(client));
    up.on('close', () => open.delete(up));
    client.pipe(up);
    up.on('data', (d: Buffer) => client.write(d));
    up.on('end', () => (released ? client.end() : heldBack.push(client)));
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: '127.0.0.1',
    port: (server.address() as { port: number }).port,
    get held() {
      return heldBack.length;
    },
    release() {
      released = true;
      for (const s of heldBack.splice(0)) s.end();
    },
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
