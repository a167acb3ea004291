import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baoApi, startBaoServer, type BaoServer } from '../support/bao-server.js';
import { createPgFixture, type CliRun, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// Invariant I4 with OpenBao: the plaintext passwords pgrotate generates appear neither in its
// own logs and errors nor in OpenBao's audit log, where request and response values are HMACs.

// A server of its own: OpenBao takes audit devices only from its config file.
let server: BaoServer;
const bao = () => server;
const root = () => baoApi(bao().address, bao().rootToken);

describe('vault provider: secrecy', () => {
  let fx: PgFixture;
  let dir: string;
  let auditFile: string;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    dir = mkdtempSync(join(tmpdir(), 'pgrotate-bao-audit-'));
    auditFile = join(dir, 'audit.log');
    server = await startBaoServer({ label: 'audit', auditFile });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
    await fx?.cleanup();
  });

  it('no plaintext password in pgrotate logs, errors, or the OpenBao audit log (only HMACs)', async () => {
    const secret = `secrecy-${randomUUID().slice(0, 8)}/app`;
    const adminSecret = `${secret}-admin`;
    const role = await fx.createRole(`sec_${fx.suffix}`, { password: 'initial-unmanaged-password-9' });
    await root()('POST', `secret/data/${adminSecret}`, {
      data: { username: fx.rotator, password: fx.rotatorPassword },
    });
    const providers = { bao: { type: 'vault', address: bao().address, mount: 'secret', token: 'env:BAO_TEST_TOKEN' } };
    const accounts = [{ name: 'sec', target: 'main', role, provider: 'bao', secret }];
    const { path, env: baseEnv } = fx.writeConfig({
      accounts,
      providers,
      targetExtra: { admin: { provider: 'bao', secret: adminSecret } },
    });
    const env = { ...baseEnv, BAO_TEST_TOKEN: bao().rootToken, PGROTATE_LOG_LEVEL: 'debug' };
    const runs: CliRun[] = [];
    for (const args of [
      ['rotate', 'sec'],
      ['rotate', 'sec', '--json'],
      ['verify', 'sec'],
      ['status', '--json'],
      ['history', 'sec'],
    ]) {
      const r = await fx.cli(['--config', path, ...args], env);
      runs.push(r);
      if (args[0] === 'rotate') expect(r.code, r.stderr).toBe(0);
    }
    // A failing run (a token OpenBao rejects), so error messages are printed too.
    const { path: badPath, env: badBase } = fx.writeConfig({
      accounts,
      providers: { bao: { ...providers.bao, token: 'env:BAO_BAD_TOKEN' } },
    });
    const bad = await fx.cli(['--config', badPath, 'rotate', 'sec'], {
      ...badBase,
      BAO_BAD_TOKEN: 'hvs.bad-token-value-that-is-secret',
      PGROTATE_LOG_LEVEL: 'debug',
    });
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/the Vault token is expired or revoked/);
    runs.push(bad);

    const passwords = new Set<string>(['initial-unmanaged-password-9', fx.rotatorPassword]);
    const meta = (await root()('GET', `secret/metadata/${secret}`)).json.data as { current_version: number };
    for (let v = 1; v <= meta.current_version; v++) {
      passwords.add(
        ((await root()('GET', `secret/data/${secret}?version=${v}`)).json.data as { data: { password: string } }).data
          .password,
      );
    }
    expect(passwords.size).toBe(4);
    const output = runs.map((r) => r.stdout + r.stderr).join('\n');
    expect(output.length).toBeGreaterThan(100);
    for (const pw of passwords) expect(output.includes(pw), 'a password appears in pgrotate output').toBe(false);
    expect(output).not.toContain(bao().rootToken);
    expect(output).not.toContain('bad-token-value-that-is-secret');

    // The audit device saw every write and read of the secret, each value as an HMAC.
    const audit = readFileSync(auditFile, 'utf8');
    expect(audit).toContain(`secret/data/pgrotate-pending/${secret}`);
    expect(audit).toContain(`secret/data/${secret}`);
    expect(audit).toMatch(/"password":"hmac-sha256:[0-9a-f]+"/);
    for (const pw of passwords) expect(audit.includes(pw), 'a password appears in the OpenBao audit log').toBe(false);
  });
});
