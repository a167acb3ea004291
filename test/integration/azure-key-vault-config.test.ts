import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureKeyVaultProvider, createAzureKeyVaultProvider } from '../../providers/azure/azure-key-vault-provider.js';
import { StaticTokenCredential } from '../../providers/azure/azure-credential.js';
import { AZURE_PENDING_SUFFIX, azureSecretNameProblem } from '../../providers/azure/azure-secret-name.js';
import { configSchema } from '../../src/app/load-config.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { sampleValue } from '../conformance/provider-conformance.js';
import { freePort } from '../support/free-port.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// The Azure Key Vault provider's checks that need no vault: secret names refused when the config
// is loaded (naming the account), a vault that cannot be reached (a clear error, nothing changed
// in PostgreSQL, no secret in the output), and the credential forms. The behaviour against a
// running vault is in test/lowkey/ (Lowkey Vault emulator).

const LONGEST = 127 - AZURE_PENDING_SUFFIX.length;

describe('azure key vault: secret names', () => {
  it('accepts letters, digits and dashes up to the length that leaves room for the pending companion', () => {
    expect(azureSecretNameProblem('pg-billing-app-01', true)).toBeNull();
    expect(azureSecretNameProblem('a'.repeat(LONGEST), true)).toBeNull();
    expect(azureSecretNameProblem('a'.repeat(LONGEST + 1), true)).toMatch(/pending companion.*127/);
    // An admin secret that is only read needs no companion.
    expect(azureSecretNameProblem('a'.repeat(127), false)).toBeNull();
    expect(azureSecretNameProblem('a'.repeat(128), false)).toMatch(/not a valid/);
    for (const bad of ['pg/app', 'pg_app', 'pg.app', '', 'caf\u00e9'])
      expect(azureSecretNameProblem(bad, true)).toMatch(/not a valid Azure Key Vault secret name/);
  });

  it('the config schema refuses an invalid name for an azure account, naming the account, and only for azure providers', () => {
    const base = {
      state: { url: 'postgres://x@127.0.0.1/s' },
      providers: {
        az: { type: 'azure-key-vault', vaultUrl: 'https://example.vault.azure.net' },
        local: { type: 'file', path: '/tmp/x.json' },
      },
      targets: { main: { host: '127.0.0.1', database: 'app', admin: { username: 'r', password: 'p' } } },
    };
    const bad = configSchema.safeParse({
      ...base,
      accounts: [{ name: 'billing', target: 'main', role: 'billing', provider: 'az', secret: 'pg/billing' }],
    });
    expect(bad.success).toBe(false);
    const issue = bad.error?.issues[0];
    expect(issue?.path).toEqual(['accounts', 0, 'secret']);
    expect(issue?.message).toMatch(/account "billing".*pg\/billing.*not a valid Azure Key Vault secret name/);
    const fileOk = configSchema.safeParse({
      ...base,
      accounts: [{ name: 'billing', target: 'main', role: 'billing', provider: 'local', secret: 'pg/billing' }],
    });
    expect(fileOk.success).toBe(true);
    const tooLong = configSchema.safeParse({
      ...base,
      accounts: [{ name: 'long', target: 'main', role: 'r', provider: 'az', secret: 'x'.repeat(LONGEST + 1) }],
    });
    expect(tooLong.error?.issues[0]?.message).toMatch(/account "long".*pending companion/);
  });
});

describe('azure key vault: provider without a vault', () => {
  it('creating the provider does no I/O; an invalid secret name is refused before any request', async () => {
    const provider = createAzureKeyVaultProvider(
      'az',
      {
        type: 'azure-key-vault',
        vaultUrl: 'https://127.0.0.1:1',
        credential: { token: 'tok-123456' },
        disableChallengeResourceVerification: false,
      },
      { redactor: new Redactor() },
    );
    await expect(provider.getCurrent('pg/app')).rejects.toThrow(
      /provider az: "pg\/app" is not a valid Azure Key Vault secret name/,
    );
    await expect(provider.stagePending('bad_name', sampleValue())).rejects.toThrow(/bad_name/);
    await provider.close();
  });

  it('a static token credential answers with its token; the token is registered for redaction', async () => {
    const redactor = new Redactor();
    const token = `bearer-${randomBytes(8).toString('hex')}`;
    createAzureKeyVaultProvider(
      'az',
      {
        type: 'azure-key-vault',
        vaultUrl: 'https://127.0.0.1:1',
        credential: { token },
        disableChallengeResourceVerification: false,
      },
      { redactor },
    );
    expect(redactor.scrub(`Authorization: Bearer ${token}`)).toBe('Authorization: Bearer [REDACTED]');
    const access = await new StaticTokenCredential(token).getToken();
    expect(access.token).toBe(token);
    expect(access.expiresOnTimestamp).toBeGreaterThan(Date.now());
  });

  it('a caFile that cannot be read is an error naming the provider and the file', async () => {
    const provider = new AzureKeyVaultProvider({
      name: 'az',
      vaultUrl: 'https://127.0.0.1:1',
      credential: new StaticTokenCredential('t-123456'),
      caFile: '/nonexistent/ca.pem',
    });
    await expect(provider.getCurrent('pg-app')).rejects.toThrow(
      /provider az: cannot read caFile \/nonexistent\/ca.pem \(ENOENT\)/,
    );
  });

  it('caFile is trusted by this provider client only: TLS to a server with that certificate succeeds, without it fails', async () => {
    // A TLS endpoint that answers every request with 503: this checks the TLS wiring, not Key
    // Vault behaviour (that is the Lowkey Vault suite's job).
    const dir = mkdtempSync(join(tmpdir(), 'pgrotate-az-tls-'));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"ServiceUnavailable","message":"unavailable"}}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://localhost:${(server.address() as AddressInfo).port}`;
    try {
      const trusted = new AzureKeyVaultProvider({
        name: 'az',
        vaultUrl: url,
        credential: new StaticTokenCredential('t-123456'),
        caFile: cert,
        maxRetries: 0,
      });
      await expect(trusted.getCurrent('pg-app')).rejects.toThrow(
        /provider az: cannot read secret pg-app in vault https:\/\/localhost:\d+: HTTP 503/,
      );
      const untrusted = new AzureKeyVaultProvider({
        name: 'az',
        vaultUrl: url,
        credential: new StaticTokenCredential('t-123456'),
        maxRetries: 0,
      });
      await expect(untrusted.getCurrent('pg-app')).rejects.toThrow(
        /provider az: cannot read secret pg-app .*(SELF_SIGNED|self[- ]signed)/i,
      );
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unreachable vault fails fast with an error naming provider, secret and vault', async () => {
    const port = await freePort();
    const provider = new AzureKeyVaultProvider({
      name: 'az',
      vaultUrl: `https://127.0.0.1:${port}`,
      credential: new StaticTokenCredential('t-123456'),
      maxRetries: 1,
    });
    const t0 = Date.now();
    await expect(provider.getCurrent('pg-app')).rejects.toThrow(
      new RegExp(`provider az: cannot read secret pg-app in vault https://127.0.0.1:${port}: ECONNREFUSED`),
    );
    expect(Date.now() - t0).toBeLessThan(15_000);
  });
});

describe('azure key vault: rotation with an unreachable vault (pg15)', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('an invalid secret name is a config load error naming the account', async () => {
    const role = await fx.createRole(`azn_${fx.suffix}`, { password: 'initial-unmanaged-password-az0' });
    const { path, env } = fx.writeConfig({
      providers: {
        az: { type: 'azure-key-vault', vaultUrl: 'https://127.0.0.1:1', credential: { token: 'env:AZ_TOKEN' } },
      },
      accounts: [{ name: 'az-billing', target: 'main', role, provider: 'az', secret: 'pg/billing' }],
    });
    const run = await fx.cli(['--config', path, 'rotate', 'az-billing'], { ...env, AZ_TOKEN: 'token-abcdef' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/account "az-billing".*pg\/billing.*not a valid Azure Key Vault secret name/);
    expect(await fx.canLogin(role, 'initial-unmanaged-password-az0')).toBe(true);
  });

  it('fails with a clear error naming account, secret and provider; PostgreSQL is unchanged; no secret in the output', async () => {
    const initial = `initial-${randomBytes(9).toString('hex')}`;
    const token = `az-token-${randomBytes(9).toString('hex')}`;
    const role = await fx.createRole(`azu_${fx.suffix}`, { password: initial });
    const port = await freePort();
    const { path, env } = fx.writeConfig({
      providers: {
        az: { type: 'azure-key-vault', vaultUrl: `https://127.0.0.1:${port}`, credential: { token: 'env:AZ_TOKEN' } },
      },
      accounts: [{ name: 'az-app', target: 'main', role, provider: 'az', secret: 'pg-az-app' }],
    });
    const run = await fx.cli(['--config', path, 'rotate', 'az-app', '--json'], { ...env, AZ_TOKEN: token });
    expect(run.code).toBe(1);
    const result = (
      JSON.parse(run.stdout) as { results: Array<{ outcome: string; error: { message: string } | null }> }
    ).results[0];
    expect(result?.outcome).toBe('failed');
    expect(result?.error?.message).toMatch(/az-app.*pg-az-app.*az|pg-az-app.*az-app/);
    expect(result?.error?.message).toMatch(/ECONNREFUSED/);
    expect(await fx.canLogin(role, initial)).toBe(true);
    for (const out of [run.stdout, run.stderr]) {
      expect(out).not.toContain(initial);
      expect(out).not.toContain(token);
    }
  });
});
