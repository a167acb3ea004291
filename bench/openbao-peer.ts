import { Agent, request } from 'node:http';
import pg from 'pg';
import { runBounded } from '../src/core/concurrency/run-bounded.js';
import { clientConfig, type Endpoint } from '../src/core/pg/connection-options.js';

// The benchmark's reference row: OpenBao's own database secrets engine rotating the same number
// of PostgreSQL roles on the same server — static roles, SCRAM-SHA-256 verifiers computed in
// OpenBao (password_authentication=scram-sha-256), `POST database/rotate-role/<name>` over
// keep-alive HTTP with pgrotate's concurrency. It proves no login and writes to no separate store;
// it is the speed a rotation without those steps reaches here. `rotateAllVerified` is the fair
// peer: what an operator must add to have pgrotate's proof — after each rotate-role, read the
// new password (`GET static-creds/<name>`) and log in with it as the role (a new connection over
// the same endpoint and TLS mode as pgrotate's verify login), checking current_user.

export interface PeerServer {
  /** http://127.0.0.1:<port> of an OpenBao server. */
  address: string;
  token: string;
}

export interface OpenBaoPeer {
  /** Static-role names, one per PostgreSQL role, in the roles' order. */
  names: string[];
  /** Rotate every role once (`rotate-role`), `concurrency` at a time; the count that failed. */
  rotateAll(concurrency: number): Promise<{ failed: number; firstError?: string }>;
  /**
   * Rotate every role once and prove each new password: rotate-role, then static-creds, then a
   * new login as the role on `target` with that password and `SELECT current_user`. `failed`
   * counts roles where any step failed; `logins` the logins that proved the role.
   */
  rotateAllVerified(
    concurrency: number,
    target: Endpoint,
  ): Promise<{ failed: number; logins: number; firstError?: string }>;
  close(): void;
}

/** One OpenBao API call over the keep-alive agent. */
function call(
  agent: Agent,
  server: PeerServer,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = { 'X-Vault-Token': server.token };
    if (payload !== undefined)
      Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) });
    const req = request(`${server.address}/v1/${path}`, { method, agent, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function ok(agent: Agent, server: PeerServer, method: string, path: string, body?: unknown): Promise<void> {
  const res = await call(agent, server, method, path, body);
  // OpenBao answers errors as {"errors": [...]}; they never hold a password here (the admin's is in the request only).
  if (res.status >= 300) throw new Error(`OpenBao ${method} ${path}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
}

/**
 * Enable `database/` (mount `mount`), configure a postgresql-database-plugin connection as
 * `admin` with SCRAM verifiers and a pool of `concurrency` connections, and create one static
 * role per PostgreSQL role (creating a static role rotates its password once: untimed here).
 */
export async function setUpOpenBaoPeer(opts: {
  server: PeerServer;
  mount: string;
  pg: { host: string; port: number; database: string };
  admin: { username: string; password: string };
  roles: string[];
  concurrency: number;
}): Promise<OpenBaoPeer> {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const { server, mount } = opts;
  await ok(agent, server, 'POST', `sys/mounts/${mount}`, { type: 'database' });
  await ok(agent, server, 'POST', `${mount}/config/bench`, {
    plugin_name: 'postgresql-database-plugin',
    connection_url: `postgresql://{{username}}:{{password}}@${opts.pg.host}:${opts.pg.port}/${opts.pg.database}?sslmode=disable`,
    username: opts.admin.username,
    password: opts.admin.password,
    allowed_roles: '*',
    password_authentication: 'scram-sha-256',
    max_open_connections: opts.concurrency,
    max_idle_connections: opts.concurrency,
  });
  const names = opts.roles.map((_, i) => `peer-${i}`);
  const pairs = opts.roles.map((role, i) => ({ role, name: names[i] as string }));
  await runBounded(pairs, opts.concurrency, (p) =>
    ok(agent, server, 'POST', `${mount}/static-roles/${p.name}`, {
      db_name: 'bench',
      username: p.role,
      rotation_period: '720h',
    }),
  );
  return {
    names,
    async rotateAll(concurrency) {
      const errors: string[] = [];
      await runBounded(names, concurrency, async (name) => {
        const res = await call(agent, server, 'POST', `${mount}/rotate-role/${name}`).catch((err: unknown) => ({
          status: 0,
          text: String(err),
        }));
        if (res.status >= 300 || res.status === 0) errors.push(`${name}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
      });
      return { failed: errors.length, ...(errors[0] ? { firstError: errors[0] } : {}) };
    },
    async rotateAllVerified(concurrency, target) {
      const errors: string[] = [];
      let logins = 0;
      await runBounded(names, concurrency, async (name) => {
        try {
          const rotated = await call(agent, server, 'POST', `${mount}/rotate-role/${name}`);
          if (rotated.status >= 300)
            throw new Error(`rotate-role: HTTP ${rotated.status} ${rotated.text.slice(0, 200)}`);
          const creds = await call(agent, server, 'GET', `${mount}/static-creds/${name}`);
          if (creds.status >= 300) throw new Error(`static-creds: HTTP ${creds.status}`);
          const data = (JSON.parse(creds.text) as { data?: { username?: string; password?: string } }).data;
          if (!data?.username || !data.password) throw new Error('static-creds: no username or password');
          const c = new pg.Client(clientConfig(target, data.username, data.password, 'bench-peer-verify'));
          try {
            await c.connect();
            const who = (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u;
            if (who !== data.username) throw new Error(`logged in as ${String(who)} instead of ${data.username}`);
            logins++;
          } finally {
            // Not awaited, as pgrotate's verify login: the answer is known, the goodbye would only delay.
            void c.end().catch(() => undefined);
          }
        } catch (err) {
          // Errors name the role, never the password (static-creds' text is not quoted above).
          errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      });
      return { failed: errors.length, logins, ...(errors[0] ? { firstError: errors[0] } : {}) };
    },
    close: () => agent.destroy(),
  };
}
