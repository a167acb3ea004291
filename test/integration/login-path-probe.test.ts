import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redactor } from '../../src/core/logging/redactor.js';
import type { TargetConfig } from '../../src/core/config/config-schema.js';
import type { Endpoint } from '../../src/core/pg/connection-options.js';
import { probeLoginPathOf } from '../../src/core/pg/login-path-probe.js';
import { TargetConnector } from '../../src/core/pg/target-connector.js';
import { quoteIdent } from '../../src/core/pg/quote.js';
import { freePort } from '../support/free-port.js';
import { setHbaLine } from '../support/pg-hba.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// Issue 16: the pre-flight probe of the login path sends a StartupMessage as the role and stops at
// the server's first authentication answer, against the shared PostgreSQL 15 (plain connections;
// login-path-probe-tls.test.ts covers TLS). Each pg_hba.conf method the probe must tell apart is
// put at the top of pg_hba.conf for one role only.

describe('login-path probe without a password (PostgreSQL 15)', () => {
  let fx: PgFixture;
  let endpoint: Endpoint;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    endpoint = { host: fx.server.host, port: fx.server.port, database: fx.targetDb, sslmode: 'disable' };
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  const hba = (line: string, present: boolean) => setHbaLine(fx, line, present);

  async function withHba<T>(line: string, fn: () => Promise<T>): Promise<T> {
    await hba(line, true);
    try {
      return await fn();
    } finally {
      await hba(line, false);
    }
  }

  function logText(): string {
    return readFileSync(fx.server.logFile, 'utf8');
  }

  function connector(): TargetConnector {
    const target = {
      host: fx.server.host,
      port: fx.server.port,
      database: fx.targetDb,
      sslmode: 'disable',
      connectTimeout: 5000,
    } as unknown as TargetConfig;
    return new TargetConnector({
      targets: { main: target },
      resolveAdmin: async () => ({ username: fx.rotator, password: fx.rotatorPassword }),
      redactor: new Redactor(),
    });
  }

  it('scram-sha-256 (the default line): open, and the server logs no failed login while the old wrong-password probe did', async () => {
    const role = await fx.createRole(`po_${fx.suffix}`, { password: 'po-app-password-1' });
    const failed = new RegExp(`password authentication failed for user "${role}"`, 'g');
    expect(await probeLoginPathOf(endpoint, role)).toEqual({ open: true });
    const t = connector();
    try {
      expect(await t.probeLoginPath('main', role)).toEqual({ open: true });
      // The control: the probe as it was (a login with a wrong password) does leave a failed
      // login in this log, so the log would show one if the new probe made one.
      await new Promise((r) => setTimeout(r, 300));
      expect(logText().match(failed)).toBeNull();
      const old = await t.tryLogin('main', role, 'a-wrong-password', 'pgrotate-preflight');
      expect(old).toMatchObject({ ok: false, refusal: 'password' });
      const deadline = Date.now() + 10_000;
      while (!logText().match(failed) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(logText().match(failed)).toHaveLength(1);
    } finally {
      await t.close();
    }
  });

  it('sends nothing but the StartupMessage (no password) and hangs up with a FIN, not a reset', async () => {
    const role = await fx.createRole(`pw_${fx.suffix}`, { password: 'pw-app-password-1' });
    const fromClient: Buffer[] = [];
    let serverSawEnd = false;
    let clientReset = false;
    // A pass-through TCP relay in front of the real server that records what the probe sends.
    const relay = createServer((client: Socket) => {
      const upstream = connect(fx.server.port, fx.server.host);
      client.on('data', (d: Buffer) => {
        fromClient.push(d);
        upstream.write(d);
      });
      upstream.on('data', (d: Buffer) => client.write(d));
      client.on('end', () => {
        serverSawEnd = true;
        upstream.end();
      });
      client.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNRESET') clientReset = true;
        upstream.destroy();
      });
      upstream.on('end', () => client.end());
      upstream.on('error', () => client.destroy());
    });
    const port = await listen(relay);
    try {
      const r = await probeLoginPathOf({ ...endpoint, port }, role);
      expect(r).toEqual({ open: true });
      const deadline = Date.now() + 5000;
      while (!serverSawEnd && !clientReset && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
      expect(clientReset).toBe(false);
      expect(serverSawEnd).toBe(true);
      // Read the bytes by the protocol's layout, not with the probe's own encoder: one
      // StartupMessage (length, protocol 3.0, name/value pairs) and not a byte more.
      const sent = Buffer.concat(fromClient);
      expect(sent.readInt32BE(0)).toBe(sent.length);
      expect(sent.readInt32BE(4)).toBe(3 << 16);
      const fields = sent.subarray(8).toString('utf8').split('\0');
      expect(fields).toEqual(['user', role, 'database', fx.targetDb, 'application_name', 'pgrotate-preflight', '', '']);
      expect(sent.toString('utf8')).not.toContain('pw-app-password-1');
    } finally {
      relay.close();
    }
  });

  it('md5 line with an MD5-stored password: the server asks for an MD5 password; open', async () => {
    const role = await fx.createRole(`pm_${fx.suffix}`);
    const su = await fx.superClient();
    try {
      await su.query("SET password_encryption = 'md5'");
      await su.query(`ALTER ROLE ${quoteIdent(role)} PASSWORD 'pm-app-password-1'`);
    } finally {
      await su.end();
    }
    const r = await withHba(`host all ${role} 127.0.0.1/32 md5`, () => probeLoginPathOf(endpoint, role));
    expect(r).toEqual({ open: true });
  });

  it('reject line: host-refused with the server’s own reason', async () => {
    const role = await fx.createRole(`pr_${fx.suffix}`, { password: 'pr-app-password-1' });
    const t = connector();
    try {
      const r = await withHba(`host all ${role} 127.0.0.1/32 reject`, () => t.probeLoginPath('main', role));
      expect(r).toMatchObject({ open: false, reason: 'host-refused' });
      expect(!r.open && r.message).toMatch(/pg_hba\.conf rejects connection for host "127\.0\.0\.1", user "pr_\w+"/);
    } finally {
      await t.close();
    }
  });

  it('trust line: no password needed, refused as before', async () => {
    const role = await fx.createRole(`pt_${fx.suffix}`, { password: 'pt-app-password-1' });
    const r = await withHba(`host all ${role} 127.0.0.1/32 trust`, () => probeLoginPathOf(endpoint, role));
    expect(r).toEqual({
      open: false,
      reason: 'no-password-needed',
      message: 'the server accepted the login without asking for a password',
    });
  });

  it('cleartext request: a `password` line checks pg_authid (open); an `ldap` line does not (host-refused)', async () => {
    const role = await fx.createRole(`pc_${fx.suffix}`, { password: 'pc-app-password-1' });
    // `password` sends a cleartext request and compares with pg_authid: a wrong password is 28P01.
    expect(await withHba(`host all ${role} 127.0.0.1/32 password`, () => probeLoginPathOf(endpoint, role))).toEqual({
      open: true,
    });
    // `ldap` sends the same request but asks an LDAP server (none listens on port 1): 28000.
    const ldap = await withHba(
      `host all ${role} 127.0.0.1/32 ldap ldapserver=127.0.0.1 ldapport=1 ldapprefix="cn=" ldapsuffix=",dc=example"`,
      () => probeLoginPathOf(endpoint, role),
    );
    expect(ldap).toMatchObject({ open: false, reason: 'host-refused' });
    expect(!ldap.open && ldap.message).toMatch(/LDAP authentication failed/);
  });

  it('unreachable port: a fault naming the address, quickly', async () => {
    const port = await freePort();
    const t0 = Date.now();
    const r = await probeLoginPathOf({ ...endpoint, port }, 'whoever');
    expect(r).toMatchObject({ open: false, reason: 'fault' });
    expect(!r.open && r.message).toMatch(new RegExp(`connecting to 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a server that accepts and never answers: a fault at the deadline, and the socket is closed', async () => {
    let closed = false;
    const silent = createServer((s) => {
      s.on('error', () => undefined);
      s.on('close', () => (closed = true));
      s.resume(); // read and drop the startup message, so the client's hang-up is seen
    });
    const port = await listen(silent);
    try {
      const r = await probeLoginPathOf({ ...endpoint, port, connectTimeoutMs: 400 }, 'whoever');
      expect(r).toMatchObject({ open: false, reason: 'fault' });
      expect(!r.open && r.message).toMatch(/no answer within 400 ms while waiting for .*answer to a startup message/);
      const deadline = Date.now() + 5000;
      while (!closed && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
      expect(closed).toBe(true);
    } finally {
      silent.close();
    }
  });

  it('sslmode require against a server without TLS (it answers N): a fault, no plain-text fallback', async () => {
    const role = await fx.createRole(`pn_${fx.suffix}`, { password: 'pn-app-password-1' });
    const r = await probeLoginPathOf({ ...endpoint, sslmode: 'require' }, role);
    expect(r).toMatchObject({ open: false, reason: 'fault' });
    expect(!r.open && r.message).toMatch(/does not support SSL connections, but sslmode require requires TLS/);
    // The verify login agrees: node-postgres refuses the same server for the same reason.
    const tls = new TargetConnector({
      targets: { main: { ...endpoint, sslmode: 'require' } as unknown as TargetConfig },
      resolveAdmin: async () => ({ username: 'x', password: 'x' }),
      redactor: new Redactor(),
    });
    try {
      expect(await tls.tryLogin('main', role, 'pn-app-password-1')).toMatchObject({
        ok: false,
        refusal: 'fault',
        message: expect.stringMatching(/does not support SSL/),
      });
    } finally {
      await tls.close();
    }
  });
  it('a peer that sends bytes after agreeing to TLS (unencrypted, so injectable): a fault, no handshake', async () => {
    // A real PostgreSQL never does this; a man in the middle can (CVE-2021-23222 in libpq). The
    // peer below plays that part, answering the SSLRequest with 'S' followed by a fake
    // AuthenticationOk.
    let got: Buffer = Buffer.alloc(0);
    const mitm = createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', (d: Buffer) => {
        got = d;
        s.write(Buffer.from([0x53, 0x52, 0, 0, 0, 8, 0, 0, 0, 0]));
      });
    });
    const port = await listen(mitm);
    try {
      const r = await probeLoginPathOf({ ...endpoint, port, sslmode: 'require' }, 'whoever');
      expect(r).toEqual({
        open: false,
        reason: 'fault',
        message: `127.0.0.1:${port} sent unencrypted data after agreeing to TLS`,
      });
      expect([...got]).toEqual([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]); // the SSLRequest, nothing else
    } finally {
      mitm.close();
    }
  });

  it('bad input is a fault naming it, never a throw: a missing CA file, a NUL in the role name', async () => {
    const ca = await probeLoginPathOf({ ...endpoint, sslmode: 'verify-full', caFile: '/nonexistent/ca.pem' }, 'x');
    expect(ca).toMatchObject({ open: false, reason: 'fault' });
    expect(!ca.open && ca.message).toMatch(/cannot read the CA file for sslmode verify-full: .*\/nonexistent\/ca\.pem/);
    expect(await probeLoginPathOf(endpoint, 'a\0b')).toEqual({
      open: false,
      reason: 'fault',
      message: 'the role name contains a NUL byte',
    });
  });
});

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : 0);
    });
  });
}
