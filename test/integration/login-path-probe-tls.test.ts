import { spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../src/core/config/config-schema.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import type { Endpoint } from '../../src/core/pg/connection-options.js';
import { probeLoginPathOf } from '../../src/core/pg/login-path-probe.js';
import { TargetConnector } from '../../src/core/pg/target-connector.js';
import { scramVerifier } from '../../src/core/scram/scram-verifier.js';
import { freePort } from '../support/free-port.js';
import { startPgServer, stopPgServer, type PgServerInfo } from '../support/pg-server.js';

// The probe speaks the startup protocol itself, so it must take the verify login's TLS path:
// pg_hba.conf may refuse a role on plain connections and let it in over TLS (hostssl /
// hostnossl), and the certificate must be checked against the target host as node-postgres
// checks it. A PostgreSQL 15 server of its own with ssl = on and a self-signed certificate for
// IP 127.0.0.1 only, listening on 127.0.0.1 and 127.0.0.2 (the second address is the "wrong host"
// for verify-full), with log_connections = on so its log shows every connection the probe makes.

function openssl(args: string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
}

function selfSigned(dir: string, name: string, san: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2'].concat([
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=${san}`,
      '-keyout',
      key,
      '-out',
      cert,
    ]),
  );
  return { cert, key };
}

describe('login-path probe over TLS (PostgreSQL 15 with ssl = on)', () => {
  let server: PgServerInfo;
  let dir: string;
  let caFile: string;
  let otherCa: string;
  const role = 'tls_app';
  const password = 'tls-app-password-1';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pgrotate-probe-tls-'));
    const { cert, key } = selfSigned(dir, 'server', 'IP:127.0.0.1');
    caFile = cert;
    otherCa = selfSigned(dir, 'other', 'IP:127.0.0.1').cert;
    if (userInfo().uid === 0) {
      const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
      const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
      for (const f of [dir, key, cert]) chownSync(f, uid, gid);
    }
    spawnSync('chmod', ['600', key]);
    spawnSync('chmod', ['755', dir]);
    server = startPgServer({
      label: 'probe-tls',
      binDir: '/usr/lib/postgresql/15/bin',
      port: await freePort(),
      settings: {
        ssl: 'on',
        ssl_cert_file: cert,
        ssl_key_file: key,
        listen_addresses: '127.0.0.1,127.0.0.2',
        log_connections: 'on',
        log_disconnections: 'on',
      },
    });
    const su = new pg.Client({
      host: server.host,
      port: server.port,
      user: server.superuser,
      password: server.superPassword,
      database: 'postgres',
      ssl: { rejectUnauthorized: false },
    });
    await su.connect();
    try {
      await su.query(`CREATE ROLE ${role} LOGIN PASSWORD '${await scramVerifier(password)}'`);
      // Plain connections of the role are refused; over TLS its password is checked, from either address.
      const hba = join(server.dataDir, 'pg_hba.conf');
      writeFileSync(
        hba,
        `hostnossl all ${role} 127.0.0.0/8 reject\nhostssl all ${role} 127.0.0.2/32 scram-sha-256\n${readFileSync(hba, 'utf8')}`,
      );
      await su.query('SELECT pg_reload_conf()');
    } finally {
      await su.end();
    }
    await new Promise((r) => setTimeout(r, 300));
  });
  afterAll(() => {
    if (server) stopPgServer(server);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const endpoint = (sslmode: Endpoint['sslmode'], ca?: string, host = '127.0.0.1'): Endpoint => ({
    host,
    port: server.port,
    database: 'postgres',
    sslmode,
    caFile: ca,
    connectTimeoutMs: 5000,
  });

  /** The verify login (node-postgres) with the same endpoint: the probe must agree with it. */
  async function verifyLogin(e: Endpoint): Promise<boolean> {
    const target = { ...e, connectTimeout: e.connectTimeoutMs } as unknown as TargetConfig;
    const t = new TargetConnector({
      targets: { main: target },
      resolveAdmin: async () => ({ username: 'x', password: 'x' }),
      redactor: new Redactor(),
    });
    try {
      return (await t.tryLogin('main', role, password)).ok;
    } finally {
      await t.close();
    }
  }

  it('require, verify-ca, verify-full: the password is asked for over TLS (open); in plain text the host is refused', async () => {
    for (const e of [endpoint('require'), endpoint('verify-ca', caFile), endpoint('verify-full', caFile)]) {
      expect(await probeLoginPathOf(e, role), e.sslmode).toEqual({ open: true });
      expect(await verifyLogin(e), e.sslmode).toBe(true);
    }
    const plain = await probeLoginPathOf(endpoint('disable'), role);
    expect(plain).toMatchObject({ open: false, reason: 'host-refused' });
    expect(!plain.open && plain.message).toMatch(/pg_hba\.conf rejects connection .*no encryption/);
    expect(await verifyLogin(endpoint('disable'))).toBe(false);
  });

  it('a CA that did not sign the certificate: a fault for verify-ca and verify-full, as for the verify login', async () => {
    for (const mode of ['verify-ca', 'verify-full'] as const) {
      const r = await probeLoginPathOf(endpoint(mode, otherCa), role);
      expect(r, mode).toMatchObject({ open: false, reason: 'fault' });
      expect(!r.open && r.message, mode).toMatch(/negotiating TLS with 127\.0\.0\.1:\d+: .*certificate/);
      expect(await verifyLogin(endpoint(mode, otherCa)), mode).toBe(false);
    }
  });

  it('the certificate is checked against the target host: 127.0.0.2 is not in it (verify-full fault, verify-ca open)', async () => {
    const full = await probeLoginPathOf(endpoint('verify-full', caFile, '127.0.0.2'), role);
    expect(full).toMatchObject({ open: false, reason: 'fault' });
    expect(!full.open && full.message).toMatch(/IP: 127\.0\.0\.2 is not in the cert's list/);
    expect(await verifyLogin(endpoint('verify-full', caFile, '127.0.0.2'))).toBe(false);
    expect(await probeLoginPathOf(endpoint('verify-ca', caFile, '127.0.0.2'), role)).toEqual({ open: true });
    expect(await verifyLogin(endpoint('verify-ca', caFile, '127.0.0.2'))).toBe(true);
  });

  it('the server log (log_connections = on): probes are connections received, never a failed authentication, a reset or a TLS error', async () => {
    const before = readFileSync(server.logFile, 'utf8').length;
    const probes = 10;
    for (let i = 0; i < probes; i++) {
      expect(await probeLoginPathOf(endpoint('verify-full', caFile), role)).toEqual({ open: true });
      expect(await probeLoginPathOf(endpoint('disable'), role)).toMatchObject({ reason: 'host-refused' });
    }
    await new Promise((r) => setTimeout(r, 1000)); // the backends see the hang-up and exit
    const log = readFileSync(server.logFile, 'utf8').slice(before);
    // Every probe reached a backend (so the log would show what it did) ...
    expect(log.match(/LOG: {2}connection received: host=127\.0\.0\.1/g)).toHaveLength(2 * probes);
    // ... the plain ones were refused by pg_hba.conf, as intended ...
    expect(log.match(/FATAL: {2}pg_hba\.conf rejects connection/g)).toHaveLength(probes);
    // ... and nothing else: no password checked, no session, no reset or TLS complaint.
    expect(log).not.toMatch(/password authentication failed/);
    expect(log).not.toMatch(/connection authorized/);
    expect(log).not.toMatch(/could not receive data|unexpected EOF|SSL error|Connection reset|protocol violation/i);
  });
});
