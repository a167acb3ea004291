import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { azurePendingName } from '../../providers/azure-secret-name.js';
import type { SecretValue } from '../../providers/secret-provider.js';
import { describeProviderConformance, sampleValue } from '../conformance/provider-conformance.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';
import { consumerClient, consumerRead, lowkey, lowkeyHarness, lowkeyProvider, lowkeyProviderConfig, uniqueSecretName, versionCount } from './azure-lowkey-harness.js';

// The Azure Key Vault provider against a real Lowkey Vault (Azure Key Vault emulator, started once
// per run by test/services/lowkey-vault-service.ts). Run with `npm run test:lowkey`.

describeProviderConformance('azure-key-vault (Lowkey Vault)', async () => lowkeyHarness());

describe('azure key vault provider specifics (Lowkey Vault)', () => {
  it('stores JSON with contentType application/json, rotation tags, and expiresOn from nextDueAt', async () => {
    const info = lowkey();
    const provider = lowkeyProvider(info);
    const client = consumerClient(info);
    const s = uniqueSecretName();
    const due = new Date(Date.now() + 90 * 86_400_000);
    const v = { ...sampleValue(), nextDueAt: due.toISOString() };
    await provider.stagePending(s, v);
    const pending = await client.getSecret(azurePendingName(s));
    expect(pending.properties.tags).toMatchObject({ rotationId: v.rotationId, rotatedAt: v.rotatedAt, managedBy: 'pgrotate', pendingFor: s });
    await provider.promotePending(s, v.rotationId);
    const current = await client.getSecret(s);
    expect(current.properties.contentType).toBe('application/json');
    expect(current.properties.tags).toMatchObject({ rotationId: v.rotationId, rotatedAt: v.rotatedAt, managedBy: 'pgrotate' });
    expect(Math.abs((current.properties.expiresOn?.getTime() ?? 0) - due.getTime())).toBeLessThan(2_000);
    const json = JSON.parse(current.value ?? '') as Record<string, unknown>;
    expect(json).not.toHaveProperty('nextDueAt');
    expect(json).toMatchObject({ username: v.username, password: v.password, engine: 'postgres', rotationId: v.rotationId });
  });

  it('promote after a crash between "new version written" and "pending deleted" writes no second version', async () => {
    const info = lowkey();
    const provider = lowkeyProvider(info);
    const client = consumerClient(info);
    const s = uniqueSecretName();
    const v = sampleValue();
    await provider.stagePending(s, v);
    // The first half of a promote, as a crashed process would have left it.
    const pendingText = (await client.getSecret(azurePendingName(s))).value ?? '';
    await client.setSecret(s, pendingText, { contentType: 'application/json', tags: { rotationId: v.rotationId, managedBy: 'pgrotate' } });
    expect(await versionCount(client, s)).toBe(1);
    // The leftover companion holds what is already current: not pending.
    expect(await provider.getPending(s)).toBeNull();
    await provider.promotePending(s, v.rotationId);
    await provider.promotePending(s, v.rotationId);
    expect(await versionCount(client, s)).toBe(1);
    expect((await consumerRead(client, s))?.password).toBe(v.password);
    expect(await provider.getPending(s)).toBeNull();
  });

  it('a soft-deleted pending companion never blocks the next rotation', async () => {
    const info = lowkey();
    const provider = lowkeyProvider(info);
    const client = consumerClient(info);
    const s = uniqueSecretName();
    // Discard leaves the companion soft-deleted; staging again purges or recovers it.
    const a = sampleValue();
    await provider.stagePending(s, a);
    await provider.discardPending(s, a.rotationId);
    expect(await provider.getPending(s)).toBeNull();
    const b = sampleValue();
    await provider.stagePending(s, b);
    expect((await provider.getPending(s))?.rotationId).toBe(b.rotationId);
    await provider.promotePending(s, b.rotationId);
    // Deleted by hand (and waited for) rather than by pgrotate: the same.
    const c = sampleValue();
    await provider.stagePending(s, c);
    const poller = await client.beginDeleteSecret(azurePendingName(s), { intervalInMs: 200 });
    await poller.pollUntilDone();
    const d = sampleValue();
    await provider.stagePending(s, d);
    await provider.promotePending(s, d.rotationId);
    expect((await consumerRead(client, s))?.password).toBe(d.password);
    expect((await provider.getPrevious(s))?.password).toBe(b.password);
  });

  it('previous is the version before the latest enabled one, also for versions written in the same second', async () => {
    const info = lowkey();
    const provider = lowkeyProvider(info);
    const s = uniqueSecretName();
    const values = [sampleValue(), sampleValue(), sampleValue()];
    for (const v of values) {
      await provider.stagePending(s, v);
      await provider.promotePending(s, v.rotationId);
    }
    expect((await provider.getCurrent(s))?.password).toBe(values[2]?.password);
    expect((await provider.getPrevious(s))?.password).toBe(values[1]?.password);
  });
});

describe('azure key vault rotation end to end (Lowkey Vault, pg15)', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  const configFor = (accounts: unknown[]) => {
    const info = lowkey();
    const { path, env } = fx.writeConfig({ providers: { az: lowkeyProviderConfig(info) }, accounts });
    return { path, env: { ...env, AZ_TOKEN: info.token } };
  };

  it('single-user: consumers read the new credential, which logs in; the old one is previous and refused', async () => {
    const info = lowkey();
    const client = consumerClient(info);
    const provider = lowkeyProvider(info);
    const role = await fx.createRole(`azs_${fx.suffix}`, { password: 'initial-unmanaged-password-az1' });
    const secret = uniqueSecretName('pg-single');
    const { path, env } = configFor([{ name: 'az-single', target: 'main', role, provider: 'az', secret }]);
    const first = await fx.cli(['--config', path, 'rotate', 'az-single'], env);
    expect(first.code, first.stderr).toBe(0);
    const v1 = await consumerRead(client, secret);
    expect(v1).toMatchObject({ username: role, host: fx.server.host, port: fx.server.port, dbname: fx.targetDb, engine: 'postgres' });
    expect(await fx.canLogin(role, v1?.password as string)).toBe(true);
    const second = await fx.cli(['--config', path, 'rotate', 'az-single'], env);
    expect(second.code, second.stderr).toBe(0);
    const v2 = await consumerRead(client, secret);
    expect(await fx.canLogin(role, v2?.password as string)).toBe(true);
    expect(await fx.canLogin(role, v1?.password as string)).toBe(false);
    expect((await provider.getPrevious(secret))?.password).toBe(v1?.password);
    expect(await versionCount(client, secret)).toBe(2);
    // Secrecy: neither password in pgrotate's output (stderr holds the JSON log lines).
    for (const out of [first.stdout, first.stderr, second.stdout, second.stderr]) {
      expect(out).not.toContain(v1?.password as string);
      expect(out).not.toContain(v2?.password as string);
    }
  });

  it('alternating: the roles take turns and each consumer read logs in', async () => {
    const info = lowkey();
    const client = consumerClient(info);
    const owner = `azown_${fx.suffix}`;
    const c = await fx.rotatorClient('postgres');
    await c.query(`CREATE ROLE ${owner} NOLOGIN`);
    await c.end();
    const a = await fx.createRole(`aza_${fx.suffix}`, { inRole: owner });
    const b = await fx.createRole(`azb_${fx.suffix}`, { inRole: owner });
    const secret = uniqueSecretName('pg-alt');
    const { path, env } = configFor([{ name: 'az-alt', target: 'main', strategy: 'alternating', roles: [a, b], gracePeriod: '1h', provider: 'az', secret }]);
    const seen: string[] = [];
    for (const expected of [a, b, a]) {
      const run = await fx.cli(['--config', path, 'rotate', 'az-alt'], env);
      expect(run.code, run.stderr).toBe(0);
      const v = await consumerRead(client, secret);
      expect(v?.username).toBe(expected);
      expect(await fx.canLogin(expected, v?.password as string)).toBe(true);
      seen.push(v?.password as string);
      for (const p of seen) expect(run.stderr + run.stdout).not.toContain(p);
    }
  });

  it.each(['after-stage', 'after-apply', 'after-verify', 'after-promote'])(
    'a crash %s: consumers never read an unapplied password, and the rerun writes exactly one new version',
    async (step) => {
      const info = lowkey();
      const client = consumerClient(info);
      const provider = lowkeyProvider(info);
      const role = await fx.createRole(`azc_${step.replace('-', '_')}_${fx.suffix}`);
      const secret = uniqueSecretName('pg-crash');
      const { path, env } = configFor([{ name: 'az-crash', target: 'main', role, provider: 'az', secret }]);
      expect((await fx.cli(['--config', path, 'rotate', 'az-crash'], env)).code).toBe(0);
      const before = (await consumerRead(client, secret)) as SecretValue;
      expect(await versionCount(client, secret)).toBe(1);

      const crashed = await fx.cliProcess(['--config', path, 'rotate', 'az-crash'], { ...env, PGROTATE_FAILPOINT: step });
      expect(crashed.signal).toBe('SIGKILL');
      const during = await consumerRead(client, secret);
      if (step === 'after-promote') {
        // Promoted: the new version is current and it is the applied, verified one.
        expect(await fx.canLogin(role, during?.password as string)).toBe(true);
      } else {
        // Not promoted: consumers still read the previous credential, never the pending one.
        expect(during?.password).toBe(before.password);
        if (step === 'after-stage') expect(await fx.canLogin(role, before.password)).toBe(true);
        expect((await provider.getPending(secret))?.password).not.toBe(before.password);
      }

      const rerun = await fx.cliProcess(['--config', path, 'rotate', 'az-crash', '--json'], env);
      expect(rerun.code, rerun.stderr).toBe(0);
      const after = await consumerRead(client, secret);
      expect(await fx.canLogin(role, after?.password as string)).toBe(true);
      expect(after?.password).not.toBe(before.password);
      expect(await versionCount(client, secret)).toBe(2);
      expect(await provider.getPending(secret)).toBeNull();
      expect(rerun.stderr).not.toContain(after?.password as string);
    },
  );

  it('a current secret that is not JSON: a clear error naming the account and secret, PostgreSQL unchanged', async () => {
    const info = lowkey();
    const client = consumerClient(info);
    const role = await fx.createRole(`azj_${fx.suffix}`, { password: 'initial-unmanaged-password-az2' });
    const secret = uniqueSecretName('pg-notjson');
    await client.setSecret(secret, 'hunter2-not-json-at-all');
    const { path, env } = configFor([{ name: 'az-notjson', target: 'main', role, provider: 'az', secret }]);
    const run = await fx.cli(['--config', path, 'rotate', 'az-notjson', '--json'], env);
    expect(run.code).toBe(1);
    const result = (JSON.parse(run.stdout) as { results: Array<{ error: { message: string } | null }> }).results[0];
    expect(result?.error?.message).toMatch(new RegExp(`az-notjson.*${secret}.*not JSON`));
    expect(run.stdout + run.stderr).not.toContain('hunter2-not-json-at-all');
    expect(await fx.canLogin(role, 'initial-unmanaged-password-az2')).toBe(true);
    expect(await versionCount(client, secret)).toBe(1);
  });

  it('a secret whose latest version is disabled (Key Vault answers 403 to reads): a clear error, nothing changed', async () => {
    const info = lowkey();
    const client = consumerClient(info);
    const role = await fx.createRole(`azd_${fx.suffix}`, { password: 'initial-unmanaged-password-az3' });
    const secret = uniqueSecretName('pg-disabled');
    const set = await client.setSecret(secret, JSON.stringify({ username: role, password: 'initial-unmanaged-password-az3' }));
    await client.updateSecretProperties(secret, set.properties.version as string, { enabled: false });
    const { path, env } = configFor([{ name: 'az-disabled', target: 'main', role, provider: 'az', secret }]);
    const run = await fx.cli(['--config', path, 'rotate', 'az-disabled', '--json'], env);
    expect(run.code).toBe(1);
    const result = (JSON.parse(run.stdout) as { results: Array<{ error: { message: string } | null }> }).results[0];
    expect(result?.error?.message).toMatch(new RegExp(`az-disabled.*${secret}.*HTTP 40\\d|access denied`));
    expect(run.stdout + run.stderr).not.toContain('initial-unmanaged-password-az3');
    expect(await fx.canLogin(role, 'initial-unmanaged-password-az3')).toBe(true);
  });

  it('a rotation id unknown to the vault cannot be promoted (error names the secret)', async () => {
    const provider = lowkeyProvider(lowkey());
    const secret = uniqueSecretName();
    await expect(provider.promotePending(secret, randomUUID())).rejects.toThrow(secret);
  });
});
