import { randomUUID } from 'node:crypto';
import { Agent } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { azurePendingName } from '../../providers/azure/azure-secret-name.js';
import type { SecretValue } from '../../src/core/provider/secret-provider.js';
import { describeProviderConformance, sampleValue } from '../conformance/provider-conformance.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { startAzureDenyProxy, type AzureDenyProxy } from '../support/azure-deny-proxy.js';
import { pgServer } from '../support/provided.js';
import {
  consumerClient,
  consumerRead,
  lowkey,
  lowkeyHarness,
  lowkeyProvider,
  lowkeyProviderConfig,
  uniqueSecretName,
  versionCount,
} from './azure-lowkey-harness.js';

// The Azure Key Vault provider against a real Lowkey Vault (Azure Key Vault emulator, started once
// per run by test/services/lowkey-vault-service.ts). Part of `npm test` / `npm run test:full`;
// `npm run test:lowkey` runs only this suite. Each CLI rotation makes about ten https calls to a
// JVM sharing the cores with everything else, hence the longer per-test timeout.

describeProviderConformance('azure-key-vault (Lowkey Vault)', async () => lowkeyHarness());

describe('azure key vault provider specifics (Lowkey Vault)', { timeout: 120_000 }, () => {
  it('stores JSON with contentType application/json, rotation tags, and expiresOn from nextDueAt', async () => {
    const info = lowkey();
    const provider = lowkeyProvider(info);
    const client = consumerClient(info);
    const s = uniqueSecretName();
    const due = new Date(Date.now() + 90 * 86_400_000);
    const v = { ...sampleValue(), nextDueAt: due.toISOString() };
    await provider.stagePending(s, v);
    const pending = await client.getSecret(azurePendingName(s));
    expect(pending.properties.tags).toMatchObject({
      rotationId: v.rotationId,
      rotatedAt: v.rotatedAt,
      managedBy: 'pgrotate',
      pendingFor: s,
    });
    await provider.promotePending(s, v.rotationId);
    const current = await client.getSecret(s);
    expect(current.properties.contentType).toBe('application/json');
    expect(current.properties.tags).toMatchObject({
      rotationId: v.rotationId,
      rotatedAt: v.rotatedAt,
      managedBy: 'pgrotate',
    });
    expect(Math.abs((current.properties.expiresOn?.getTime() ?? 0) - due.getTime())).toBeLessThan(2_000);
    const json = JSON.parse(current.value ?? '') as Record<string, unknown>;
    expect(json).not.toHaveProperty('nextDueAt');
    expect(json).toMatchObject({
      username: v.username,
      password: v.password,
      engine: 'postgres',
      rotationId: v.rotationId,
    });
  });

  it('a vault that refuses purges is asked once, not on every stage, and never retried', async () => {
    // Lowkey's default vault may not purge (as Azure with purge protection): it answers 500, which
    // the SDK's retry policy would retry three times with back-off on every stage (the azure
    // bench's second run: 3.2 rotations/s against 26.9 in the first).
    const info = lowkey();
    const proxy = await startAzureDenyProxy(info);
    try {
      const provider = lowkeyProvider({ ...info, vaultUrl: proxy.vaultUrl });
      const s = uniqueSecretName();
      let last = sampleValue();
      await provider.stagePending(s, last);
      await provider.promotePending(s, last.rotationId);
      for (let i = 0; i < 4; i++) {
        last = sampleValue();
        await provider.stagePending(s, last); // the companion deleted by the last promote is in the way
        await provider.promotePending(s, last.rotationId);
      }
      // (A 401 is the bearer-challenge handshake of a client's first request, not an attempt.)
      const purges = proxy.forwarded.filter((r) => r.startsWith('purge ') && !r.endsWith(' 401'));
      expect(purges).toEqual([`purge ${azurePendingName(s)} 500`]);
      expect(proxy.forwarded.filter((r) => r.startsWith('recover ') && r.endsWith(' 200')).length).toBe(4);
      expect((await provider.getCurrent(s))?.password).toBe(last.password);
      await provider.close();
    } finally {
      await proxy.close();
    }
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
    await client.setSecret(s, pendingText, {
      contentType: 'application/json',
      tags: { rotationId: v.rotationId, managedBy: 'pgrotate' },
    });
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

  it('with caFile, requests go through one keep-alive agent whose extra CA is a prebuilt SecureContext, not tlsOptions.ca', async () => {
    const info = lowkey();
    const provider = lowkeyProvider(info);
    const s = uniqueSecretName();
    const v = sampleValue();
    await provider.stagePending(s, v);
    await provider.promotePending(s, v.rotationId);
    expect((await provider.getCurrent(s))?.password).toBe(v.password);
    // With `tlsOptions: { ca: [...rootCertificates, pem] }` Node's https.Agent joined all ~150 root
    // PEMs into its pool key on every request and parsed them again for every TLS connection: the
    // largest CPU cost of an Azure rotation in `npm run bench` (see the benchmark notes in docs/benchmarks.md).
    const agent = (provider as unknown as { agent: (Agent & { options: Record<string, unknown> }) | null }).agent;
    expect(agent).toBeInstanceOf(Agent);
    expect(agent?.options.ca).toBeUndefined();
    expect(agent?.options.secureContext).toBeDefined();
    expect(agent?.options.keepAlive).toBe(true);
    // Sequential requests reuse the kept-alive connection.
    for (let i = 0; i < 5; i++) await provider.getCurrent(s);
    const open =
      Object.values(agent?.freeSockets ?? {}).flat().length + Object.values(agent?.sockets ?? {}).flat().length;
    expect(open).toBe(1);
    await provider.close();
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

describe('azure key vault rotation end to end (Lowkey Vault, pg15)', { timeout: 120_000 }, () => {
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
    expect(v1).toMatchObject({
      username: role,
      host: fx.server.host,
      port: fx.server.port,
      dbname: fx.targetDb,
      engine: 'postgres',
    });
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

  it("the secret's own keys survive a first and a second rotation, and a crash after stage with its resume", async () => {
    const info = lowkey();
    const client = consumerClient(info);
    const provider = lowkeyProvider(info);
    const initial = `initial-${randomUUID()}`;
    const role = await fx.createRole(`azk_${fx.suffix}`, { password: initial });
    const secret = uniqueSecretName('pg-kept');
    const kept = { pool_size: 20, sslmode: 'verify-full', owner_team: 'payments', labels: { tier: 'gold' } };
    await client.setSecret(secret, JSON.stringify({ username: role, password: initial, engine: 'postgres', ...kept }));
    const { path, env } = configFor([{ name: 'az-kept', target: 'main', role, provider: 'az', secret }]);
    const raw = async () => JSON.parse((await client.getSecret(secret)).value ?? 'null') as Record<string, unknown>;
    const seen = [initial];
    for (let i = 0; i < 2; i++) {
      const r = await fx.cli(['--config', path, 'rotate', 'az-kept'], env);
      expect(r.code, r.stderr).toBe(0);
      const current = await raw();
      expect(current).toMatchObject({ ...kept, username: role, dbname: fx.targetDb });
      for (const old of seen) expect(JSON.stringify(current)).not.toContain(old);
      expect(await fx.canLogin(role, current.password as string)).toBe(true);
      seen.push(current.password as string);
    }
    const crashed = await fx.cliProcess(['--config', path, 'rotate', 'az-kept'], {
      ...env,
      PGROTATE_FAILPOINT: 'after-stage',
    });
    expect(crashed.signal).toBe('SIGKILL');
    expect((await provider.getPending(secret))?.extra).toEqual(kept);
    const rerun = await fx.cliProcess(['--config', path, 'rotate', 'az-kept'], env);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(await raw()).toMatchObject(kept);
    expect((await provider.getPrevious(secret))?.extra).toEqual(kept);
    await provider.close();
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
    const { path, env } = configFor([
      {
        name: 'az-alt',
        target: 'main',
        strategy: 'alternating',
        roles: [a, b],
        gracePeriod: '1h',
        provider: 'az',
        secret,
      },
    ]);
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

      const crashed = await fx.cliProcess(['--config', path, 'rotate', 'az-crash'], {
        ...env,
        PGROTATE_FAILPOINT: step,
      });
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

  // Azure answers a read of a disabled latest version with 403 Forbidden, inner code SecretDisabled.
  // Lowkey Vault answers 404 (NotFoundException "Operation get is not allowed on a disabled entity"),
  // the same status as "no such secret", which is why this once rotated over the secret with exit 0.
  // The provider now confirms a 404 against the secret's version list, so this runs the emulator's
  // path; Azure's 403 SecretDisabled path cannot be produced by the emulator and is covered by
  // test/unit/azure-error.test.ts.
  it('a secret whose latest version is disabled (Azure: 403 SecretDisabled; Lowkey: 404): a clear error, nothing changed', async () => {
    const info = lowkey();
    const client = consumerClient(info);
    const provider = lowkeyProvider(info);
    const role = await fx.createRole(`azd_${fx.suffix}`, { password: 'initial-unmanaged-password-az3' });
    const secret = uniqueSecretName('pg-disabled');
    const set = await client.setSecret(
      secret,
      JSON.stringify({ username: role, password: 'initial-unmanaged-password-az3' }),
    );
    await client.updateSecretProperties(secret, set.properties.version as string, { enabled: false });
    const { path, env } = configFor([{ name: 'az-disabled', target: 'main', role, provider: 'az', secret }]);
    for (const args of [
      ['rotate', 'az-disabled', '--json'],
      ['rotate', 'az-disabled', '--dry-run', '--json'],
    ]) {
      const run = await fx.cli(['--config', path, ...args], env);
      expect(run.code, run.stderr).toBe(1);
      const result = (JSON.parse(run.stdout) as { results: Array<{ error: { message: string } | null }> }).results[0];
      expect(result?.error?.message).toMatch(
        new RegExp(`az-disabled.*${secret}.*latest version ${set.properties.version} is disabled`),
      );
      expect(run.stdout + run.stderr).not.toContain('initial-unmanaged-password-az3');
    }
    const verify = await fx.cli(['--config', path, 'verify', 'az-disabled'], env);
    expect(verify.code).toBe(1);
    // Nothing changed: PostgreSQL keeps its password, the secret has its one (disabled) version, no pending.
    expect(await fx.canLogin(role, 'initial-unmanaged-password-az3')).toBe(true);
    expect(await versionCount(client, secret)).toBe(1);
    expect(await versionCount(client, azurePendingName(secret))).toBe(0);
    await expect(provider.getCurrent(secret)).rejects.toThrow(/is disabled/);
    // Enabled again by hand: the next rotation goes through.
    await client.updateSecretProperties(secret, set.properties.version as string, { enabled: true });
    const run = await fx.cli(['--config', path, 'rotate', 'az-disabled'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(await fx.canLogin(role, (await consumerRead(client, secret))?.password as string)).toBe(true);
  });

  it('alternating: a reader that keeps logging in with what the vault holds never fails across rotations', async () => {
    const info = lowkey();
    const client = consumerClient(info);
    const owner = `azpown_${fx.suffix}`;
    const c = await fx.rotatorClient('postgres');
    await c.query(`CREATE ROLE ${owner} NOLOGIN`);
    await c.end();
    const a = await fx.createRole(`azpa_${fx.suffix}`, { inRole: owner });
    const b = await fx.createRole(`azpb_${fx.suffix}`, { inRole: owner });
    const secret = uniqueSecretName('pg-polled');
    const { path, env } = configFor([
      {
        name: 'az-polled',
        target: 'main',
        strategy: 'alternating',
        roles: [a, b],
        gracePeriod: '1h',
        provider: 'az',
        secret,
      },
    ]);
    expect((await fx.cli(['--config', path, 'rotate', 'az-polled'], env)).code).toBe(0);
    let stop = false;
    let reads = 0;
    const users = new Set<string>();
    const failures: string[] = [];
    // An application: reads the latest version with the plain SDK, then logs in with it.
    const reader = (async () => {
      while (!stop) {
        const v = await consumerRead(client, secret);
        if (!v || !(await fx.canLogin(v.username, v.password)))
          failures.push(`${v?.username ?? 'no value'} ${v?.rotationId ?? ''}`);
        if (v) users.add(v.username);
        reads++;
      }
    })();
    try {
      for (let i = 0; i < 4; i++) {
        const run = await fx.cli(['--config', path, 'rotate', 'az-polled'], env);
        expect(run.code, run.stderr).toBe(0);
      }
    } finally {
      stop = true;
      await reader;
    }
    expect(reads).toBeGreaterThan(4);
    expect([...users].sort()).toEqual([a, b].sort());
    expect(failures).toEqual([]);
    expect(await versionCount(client, secret)).toBe(5);
  });

  it("soft-delete: the account's own secret deleted by someone is recovered with its history, and the rotation completes", async () => {
    const info = lowkey();
    const client = consumerClient(info);
    const provider = lowkeyProvider(info);
    const role = await fx.createRole(`azsd_${fx.suffix}`);
    const secret = uniqueSecretName('pg-softdel');
    const { path, env } = configFor([{ name: 'az-softdel', target: 'main', role, provider: 'az', secret }]);
    expect((await fx.cli(['--config', path, 'rotate', 'az-softdel'], env)).code).toBe(0);
    const v1 = (await consumerRead(client, secret)) as SecretValue;
    const poller = await client.beginDeleteSecret(secret, { intervalInMs: 200 });
    await poller.pollUntilDone();
    expect(await consumerRead(client, secret)).toBeNull();
    expect((await client.getDeletedSecret(secret)).name).toBe(secret);

    const run = await fx.cli(['--config', path, 'rotate', 'az-softdel', '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const v2 = (await consumerRead(client, secret)) as SecretValue;
    expect(v2.rotationId).not.toBe(v1.rotationId);
    expect(await fx.canLogin(role, v2.password)).toBe(true);
    expect(await fx.canLogin(role, v1.password)).toBe(false);
    // Recovered, not purged: the earlier version is still there as previous.
    expect(await versionCount(client, secret)).toBe(2);
    expect((await provider.getPrevious(secret))?.password).toBe(v1.password);
    expect(await provider.getPending(secret)).toBeNull();
  });

  describe('missing permissions (an RBAC proxy in front of Lowkey Vault, which has no authorization)', () => {
    let proxy: AzureDenyProxy;
    beforeAll(async () => {
      proxy = await startAzureDenyProxy(lowkey());
    });
    afterAll(async () => {
      await proxy?.close();
    });

    const proxiedConfig = (accounts: unknown[]) => {
      const info = lowkey();
      const { path, env } = fx.writeConfig({
        providers: { az: { ...lowkeyProviderConfig(info), vaultUrl: proxy.vaultUrl } },
        accounts,
      });
      return { path, env: { ...env, AZ_TOKEN: info.token } };
    };
    const errorOf = (stdout: string) =>
      (JSON.parse(stdout) as { results: Array<{ error: { message: string } | null }> }).results[0]?.error?.message ??
      '';

    it.each([
      ['get', 'read', 'Microsoft.KeyVault/vaults/secrets/getSecret/action'],
      ['set', 'write the pending value of', 'Microsoft.KeyVault/vaults/secrets/setSecret/action'],
    ] as const)(
      'without "%s": a clear error naming the secret and the missing action; PostgreSQL and the secret unchanged',
      async (operation, what, action) => {
        const info = lowkey();
        const client = consumerClient(info);
        const role = await fx.createRole(`azp${operation}_${fx.suffix}`, {
          password: 'initial-unmanaged-password-az4',
        });
        const secret = uniqueSecretName(`pg-no-${operation}`);
        await client.setSecret(secret, JSON.stringify({ username: role, password: 'initial-unmanaged-password-az4' }));
        const { path, env } = proxiedConfig([
          { name: `az-no-${operation}`, target: 'main', role, provider: 'az', secret },
        ]);
        proxy.deny.clear();
        proxy.deny.add(operation);
        try {
          const run = await fx.cli(['--config', path, 'rotate', `az-no-${operation}`, '--json'], env);
          expect(run.code, run.stderr).toBe(1);
          const message = errorOf(run.stdout);
          expect(message).toContain(`account az-no-${operation}`);
          expect(message).toContain(`cannot ${what} secret ${secret}`);
          expect(message).toContain(
            `access denied (HTTP 403 Forbidden/ForbiddenByRbac): the identity lacks the "${operation}" secret permission`,
          );
          expect(message).toContain(action);
          expect(run.stdout + run.stderr).not.toContain('initial-unmanaged-password-az4');
          expect(proxy.refused.some((r) => r.startsWith(`${operation} ${secret}`))).toBe(true);
        } finally {
          proxy.deny.clear();
        }
        expect(await fx.canLogin(role, 'initial-unmanaged-password-az4')).toBe(true);
        expect(await versionCount(client, secret)).toBe(1);
        expect(await versionCount(client, azurePendingName(secret))).toBe(0);
      },
    );

    it('without "delete": the rotation stops after promote, naming the action; consumers already read a working credential, and the rerun finishes once granted', async () => {
      const info = lowkey();
      const client = consumerClient(info);
      const role = await fx.createRole(`azpdel_${fx.suffix}`);
      const secret = uniqueSecretName('pg-no-delete');
      const { path, env } = proxiedConfig([{ name: 'az-no-delete', target: 'main', role, provider: 'az', secret }]);
      proxy.deny.clear();
      proxy.deny.add('delete');
      let run;
      try {
        run = await fx.cli(['--config', path, 'rotate', 'az-no-delete', '--json'], env);
      } finally {
        proxy.deny.clear();
      }
      expect(run.code, run.stderr).toBe(1);
      const message = errorOf(run.stdout);
      expect(message).toContain(`cannot delete the pending value of secret ${secret}`);
      expect(message).toContain('the identity lacks the "delete" secret permission');
      expect(message).toContain('Microsoft.KeyVault/vaults/secrets/delete');
      const current = (await consumerRead(client, secret)) as SecretValue;
      expect(await fx.canLogin(role, current.password)).toBe(true);
      // Granted again: the rerun resumes at promote, removes the companion, writes no second version.
      const rerun = await fx.cli(['--config', path, 'rotate', 'az-no-delete', '--json'], env);
      expect(rerun.code, rerun.stderr).toBe(0);
      expect((await consumerRead(client, secret))?.password).toBe(current.password);
      expect(await versionCount(client, secret)).toBe(1);
      expect(await lowkeyProvider(info).getPending(secret)).toBeNull();
    });
  });

  it('a rotation id unknown to the vault cannot be promoted (error names the secret)', async () => {
    const provider = lowkeyProvider(lowkey());
    const secret = uniqueSecretName();
    await expect(provider.promotePending(secret, randomUUID())).rejects.toThrow(secret);
  });
});
