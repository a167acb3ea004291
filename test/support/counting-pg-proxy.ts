import { createConnection, createServer, type Server, type Socket } from 'node:net';

// A TCP proxy in front of a real PostgreSQL server that counts what crosses it: each new
// connection (with the user and application_name of its startup message, and whether the server
// answered AuthenticationOk) and each statement a client sent on it (a simple-protocol Query or
// an extended-protocol Execute). Cost tests count per rotation with it instead of trusting the
// code's own idea of what it sends. Plain TCP only (sslmode disable).

export interface CountedConnection {
  user: string;
  database: string;
  applicationName: string;
  /** The server accepted the login (AuthenticationOk). */
  authenticated: boolean;
  /** The client sent a password message (cleartext, MD5 or a SASL message). */
  sentPassword: boolean;
  /** When the TCP connection was accepted, and when its startup message came (performance.now()). */
  acceptedAt: number;
  startedAt: number;
  /** Statements run on this connection since the proxy's counters were last reset. */
  statements: string[];
}

export interface CountingPgProxy {
  port: number;
  /** Connections opened since the last reset. */
  readonly opened: CountedConnection[];
  /** Statements sent on any connection (old or new) since the last reset, in order, with when they were sent (performance.now()). */
  readonly statements: Array<{ user: string; applicationName: string; text: string; at: number }>;
  reset(): void;
  close(): Promise<void>;
}

/** Reads length-prefixed protocol messages out of a byte stream. */
class MessageReader {
  private buf = Buffer.alloc(0);
  constructor(private startup: boolean) {}

  /** Feed bytes; returns the complete messages (type '' for the untyped startup message). */
  push(chunk: Buffer): Array<{ type: string; body: Buffer }> {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: Array<{ type: string; body: Buffer }> = [];
    for (;;) {
      const head = this.startup ? 0 : 1;
      if (this.buf.length < head + 4) break;
      const len = this.buf.readInt32BE(head);
      if (this.buf.length < head + len) break;
      out.push({
        type: this.startup ? '' : String.fromCharCode(this.buf[0] as number),
        body: this.buf.subarray(head + 4, head + len),
      });
      this.buf = this.buf.subarray(head + len);
      this.startup = false;
    }
    return out;
  }
}

function startupParams(body: Buffer): Record<string, string> {
  // int32 protocol version, then NUL-terminated key/value pairs.
  const parts = body.subarray(4).toString('utf8').split('\0');
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length; i += 2) if (parts[i]) out[parts[i] as string] = parts[i + 1] as string;
  return out;
}

/** Start a counting proxy to `upstream` on a free local port. */
export async function startCountingPgProxy(upstream: { host: string; port: number }): Promise<CountingPgProxy> {
  const opened: CountedConnection[] = [];
  const statements: Array<{ user: string; applicationName: string; text: string; at: number }> = [];
  const sockets = new Set<Socket>();
  let epoch = 0;
  const server: Server = createServer((client) => {
    const up = createConnection(upstream);
    sockets.add(client).add(up);
    const conn: CountedConnection = {
      user: '',
      database: '',
      applicationName: '',
      authenticated: false,
      sentPassword: false,
      acceptedAt: performance.now(),
      startedAt: Number.NaN,
      statements: [],
    };
    let connEpoch = epoch;
    const fromClient = new MessageReader(true);
    const fromServer = new MessageReader(false);
    // The text of the last Parse, so an Execute can be named by its statement.
    let parsed = '';
    client.on('data', (chunk: Buffer) => {
      for (const m of fromClient.push(chunk)) {
        if (m.type === '') {
          const p = startupParams(m.body);
          Object.assign(conn, {
            user: p.user ?? '',
            database: p.database ?? '',
            applicationName: p.application_name ?? '',
            startedAt: performance.now(),
          });
          opened.push(conn);
          connEpoch = epoch;
        } else if (m.type === 'Q' || m.type === 'E') {
          const text = m.type === 'Q' ? m.body.subarray(0, m.body.length - 1).toString('utf8') : parsed;
          if (connEpoch !== epoch) {
            // Counted against the window the statement was sent in, not the one the connection opened in.
            connEpoch = epoch;
            conn.statements = [];
          }
          conn.statements.push(text);
          statements.push({ user: conn.user, applicationName: conn.applicationName, text, at: performance.now() });
        } else if (m.type === 'p') {
          conn.sentPassword = true;
        } else if (m.type === 'P') {
          // Parse: name\0 query\0 ...
          const name = m.body.indexOf(0);
          parsed = m.body.subarray(name + 1, m.body.indexOf(0, name + 1)).toString('utf8');
        }
      }
      up.write(chunk);
    });
    up.on('data', (chunk: Buffer) => {
      for (const m of fromServer.push(chunk))
        if (m.type === 'R' && m.body.length >= 4 && m.body.readInt32BE(0) === 0) conn.authenticated = true;
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      up.destroy();
      sockets.delete(client);
      sockets.delete(up);
    };
    client.on('close', end).on('error', end);
    up.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    opened,
    statements,
    reset() {
      epoch++;
      opened.length = 0;
      statements.length = 0;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
