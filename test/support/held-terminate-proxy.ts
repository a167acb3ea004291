import { connect, createServer, type Server, type Socket } from 'node:net';

// A TCP proxy in front of PostgreSQL that holds back the goodbye of chosen roles' connections:
// the client's Terminate message and its FIN reach the server only after release(). The backend
// of such a connection stays in pg_stat_activity although the client has finished with it, as on
// a machine too busy to run the backend's exit before pgrotate's next statement. Connections of
// other roles (the admin login) pass through untouched.

export interface HeldTerminateProxy {
  host: string;
  port: number;
  /** Goodbyes held back now. */
  readonly held: number;
  /** Pass on every held goodbye, and every later one at once. */
  release(): void;
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

/** The user named in a StartupMessage, or null when `buf` is not one. */
function startupUser(buf: Buffer): string | null {
  if (buf.length < 8 || buf.readInt32BE(4) !== 196608) return null;
  const fields = buf.subarray(8).toString('utf8').split('\0');
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'user') return fields[i + 1] ?? null;
  return null;
}

/** Start a proxy to `upstream` on a free loopback port that holds the goodbye of `roles`. */
export async function startHeldTerminateProxy(
  upstream: { host: string; port: number },
  roles: Set<string>,
): Promise<HeldTerminateProxy> {
  const held: Array<() => void> = [];
  const open = new Set<Socket>();
  let released = false;
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    const up = connect({ host: upstream.host, port: upstream.port, allowHalfOpen: true });
    open.add(client).add(up);
    client.on('close', () => open.delete(client));
    up.on('close', () => open.delete(up));
    let holding: boolean | null = null; // decided by the startup message
    const later = (f: () => void) => (released ? f() : held.push(f));
    client.on('data', (d: Buffer) => {
      if (holding === null && !(d.length === 8 && d.readInt32BE(4) === SSL_REQUEST)) {
        const user = startupUser(d);
        holding = user !== null && roles.has(user);
      }
      if (holding && d.subarray(d.length - TERMINATE.length).equals(TERMINATE)) {
        const before = d.subarray(0, d.length - TERMINATE.length);
        if (before.length) up.write(before);
        later(() => up.write(TERMINATE));
      } else up.write(d);
    });
    client.on('end', () => (holding ? later(() => up.end()) : up.end()));
    up.on('data', (d: Buffer) => client.write(d));
    up.on('end', () => client.end());
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: '127.0.0.1',
    port: (server.address() as { port: number }).port,
    get held() {
      return held.length;
    },
    release() {
      released = true;
      for (const f of held.splice(0)) f();
    },
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
