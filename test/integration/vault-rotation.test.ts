import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { VaultProvider } from '../../providers/vault/vault-provider.js';
import type { SecretValue } from '../../src/core/provider/secret-provider.js';
import { baoApi, type BaoServerInfo } from '../support/bao-server.js';
import { expectCurrentLogsIn, expectNoLostCredential, passwordsIn } from '../support/invariants.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';

// Rotation end to end through the CLI with credentials in a real OpenBao server: both strategies
// with a consumer polling the latest KV version, the admin login itself kept in OpenBao, and
// crashes after stage and after apply.

const bao = () => service<BaoServerInfo>('bao');
const root = () => baoApi(bao().address, bao().rootToken);

function vaultProvider(): VaultProvider {
  const redactor = new Redactor();
  return new VaultProvider({
    name: 'bao',
    address: bao().address,
    mount: 'secret',
    auth: { method: 'token', token: bao().rootToken },
    redactor,
    log: createLogger(redactor, { level: 'silent' }),
  });
}

/** What an application does: read the latest version of <mount>/data/<secret>. */
async function consumerRead(secret: string): Promise<SecretValue | null> {
  const r = await root()('GET', `secret/data/${secret}`);
  if (r.status === 404) return null;
  return (r.json.data as { data: SecretValue }).data;
}

describe('vault provider: rotation end to end (pg15 + OpenBao)', () => {
  let fx: PgFixture;
  let p: VaultProvider;
  const run = randomUUID().slice(0, 8);
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    p = vaultProvider();
  });
  afterAll(async () => {
    await p?.close();
    await fx?.cleanup();
  });

  const providers = () => ({
    bao: { type: 'vault', address: bao().address, mount: 'secret', token: 'env:BAO_TEST_TOKEN' },
  });
  const config = (accounts: unknown[], targetExtra?: Record<string, unknown>) => {
    const { path, env } = fx.writeConfig({ accounts, providers: providers(), ...(targetExtra ? { targetExtra } : {}) });
    return { path, env: { ...env, BAO_TEST_TOKEN: bao().rootToken } };
  };

  it('single-user: rotations through OpenBao; a polling reader never sees pending; the apply→promote window is measured', async () => {
    const role = await fx.createRole(`vs_${fx.suffix}`, { password: 'initial-unmanaged-password-1' });
    const secret = `e2e-${run}/single`;
    const { path, env } = config([{ name: 'single', target: 'main', role, provider: 'bao', secret }]);
    const first = await fx.cli(['--config', path, 'rotate', 'single'], env);
    expect(first.code, first.stderr).toBe(0);
    const v1 = (await consumerRead(secret)) as SecretValue;
    expect(v1).toMatchObject({
      username: role,
      host: fx.server.host,
      port: fx.server.port,
      dbname: fx.targetDb,
      engine: 'postgres',
    });
    expect(await fx.canLogin(role, v1.password)).toBe(true);

    let stop = false;
    const reads: Array<{ at: number; rotationId: string; ok: boolean }> = [];
    const reader = (async () => {
      while (!stop) {
        const v = await consumerRead(secret);
        if (v)
          reads.push({
            at: performance.now(),
            rotationId: v.rotationId as string,
            ok: await fx.canLogin(v.username, v.password),
          });
      }
    })();
    const rotations = 5;
    for (let i = 0; i < rotations; i++) {
      const r = await fx.cli(['--config', path, 'rotate', 'single'], env);
      expect(r.code, r.stderr).toBe(0);
    }
    stop = true;
    await reader;

    // Every value the reader saw was a promoted version of the secret, never a pending value.
    const meta = (await root()('GET', `secret/metadata/${secret}`)).json.data as { current_version: number };
    expect(meta.current_version).toBe(rotations + 1);
    const promoted = new Set<string>();
    for (let v = 1; v <= meta.current_version; v++) {
      promoted.add(
        ((await root()('GET', `secret/data/${secret}?version=${v}`)).json.data as { data: SecretValue }).data
          .rotationId as string,
      );
    }
    expect(reads.length).toBeGreaterThan(rotations);
    expect(reads.filter((r) => !promoted.has(r.rotationId))).toEqual([]);
    expect((await root()('GET', `secret/metadata/pgrotate-pending/${secret}`)).status).toBe(404);

    // Single-user has a window between ALTER ROLE (apply) and promote in which the stored
    // current password no longer logs in. Measure its longest stretch as the reader saw it.
    let longest = 0;
    let windows = 0;
    for (let i = 0; i < reads.length; i++) {
      if (reads[i]?.ok) continue;
      const start = reads[i - 1]?.at ?? (reads[i]?.at as number);
      let j = i;
      while (j < reads.length && !reads[j]?.ok) j++;
      const end = reads[j]?.at ?? (reads[j - 1]?.at as number);
      longest = Math.max(longest, end - start);
      windows++;
      i = j;
    }
    console.log(
      `[vault single-user] ${reads.length} reads over ${rotations} rotations; ${windows} stale-credential windows, longest ${longest.toFixed(1)} ms (bounded above by the gap between the reads around it)`,
    );
    expect(longest).toBeLessThan(2000);
    await expectCurrentLogsIn(fx, p, secret);
    const prev = await p.getPrevious(secret);
    expect(prev?.rotationId).not.toBe((await p.getCurrent(secret))?.rotationId);
    expect(await fx.canLogin(role, prev?.password as string)).toBe(false);
  });

  it('alternating: every password a polling reader gets from OpenBao logs in', async () => {
    const a = await fx.createRole(`va_a_${fx.suffix}`);
    const b = await fx.createRole(`va_b_${fx.suffix}`);
    const secret = `e2e-${run}/alternating`;
    const { path, env } = config([
      {
        name: 'alt',
        target: 'main',
        strategy: 'alternating',
        roles: [a, b],
        gracePeriod: '1h',
        provider: 'bao',
        secret,
      },
    ]);
    expect((await fx.cli(['--config', path, 'rotate', 'alt'], env)).code).toBe(0);
    let stop = false;
    const failures: string[] = [];
    let reads = 0;
    const reader = (async () => {
      while (!stop) {
        const v = await consumerRead(secret);
        if (v && !(await fx.canLogin(v.username, v.password))) failures.push(`${v.username} ${v.rotationId ?? ''}`);
        reads++;
      }
    })();
    for (let i = 0; i < 5; i++) {
      const r = await fx.cli(['--config', path, 'rotate', 'alt'], env);
      expect(r.code, r.stderr).toBe(0);
    }
    stop = true;
    await reader;
    console.log(`[vault alternating] ${reads} reads over 5 rotations, ${failures.length} failed logins`);
    expect(reads).toBeGreaterThan(5);
    expect(failures).toEqual([]);
    const current = await expectCurrentLogsIn(fx, p, secret);
    expect((await p.getPrevious(secret))?.username).toBe(current.username === a ? b : a);
  });

  it('the admin credential of the target is read from OpenBao', async () => {
    const adminSecret = `e2e-${run}/admin`;
    expect(
      (
        await root()('POST', `secret/data/${adminSecret}`, {
          data: { username: fx.rotator, password: fx.rotatorPassword, engine: 'postgres' },
        })
      ).status,
    ).toBe(200);
    const role = await fx.createRole(`vadm_${fx.suffix}`);
    const secret = `e2e-${run}/via-admin-secret`;
    const { path, env } = config([{ name: 'viaadmin', target: 'main', role, provider: 'bao', secret }], {
      admin: { provider: 'bao', secret: adminSecret },
    });
    // The rotator's password is not in the environment the CLI gets for the target.
    const r = await fx.cli(['--config', path, 'rotate', 'viaadmin'], env);
    expect(r.code, r.stderr).toBe(0);
    await expectCurrentLogsIn(fx, p, secret);
    expect(r.stderr).not.toContain(fx.rotatorPassword);

    // A missing admin secret is a clear error naming the target and the secret.
    const { path: bad, env: badEnv } = config([{ name: 'viaadmin', target: 'main', role, provider: 'bao', secret }], {
      admin: { provider: 'bao', secret: `e2e-${run}/no-such-admin` },
    });
    const failed = await fx.cli(['--config', bad, 'rotate', 'viaadmin'], badEnv);
    expect(failed.code).not.toBe(0);
    expect(failed.stdout + failed.stderr).toMatch(
      new RegExp(`admin secret e2e-${run}/no-such-admin not found in provider bao`),
    );
  });

  it('an unreachable OpenBao fails the rotation with an error naming account and target, and changes nothing (I5)', async () => {
    const { freePort } = await import('../support/free-port.js');
    const role = await fx.createRole(`vdown_${fx.suffix}`, { password: 'initial-unmanaged-password-5' });
    const port = await freePort();
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'down', target: 'main', role, provider: 'bao', secret: `e2e-${run}/down` }],
      providers: {
        bao: { type: 'vault', address: `http://127.0.0.1:${port}`, token: 'env:BAO_TEST_TOKEN', timeout: '2s' },
      },
    });
    const r = await fx.cli(['--config', path, 'rotate', 'down', '--json'], { ...env, BAO_TEST_TOKEN: bao().rootToken });
    expect(r.code).not.toBe(0);
    const result = (
      JSON.parse(r.stdout) as {
        results: Array<{ outcome: string; account: string; target: string; error: string | { message: string } }>;
      }
    ).results[0];
    expect(result).toMatchObject({ outcome: 'failed', account: 'down', target: 'main' });
    expect(JSON.stringify(result?.error)).toMatch(new RegExp(`Vault at http://127.0.0.1:${port} is unreachable`));
    expect(await fx.canLogin(role, 'initial-unmanaged-password-5')).toBe(true);
  });

  for (const step of ['after-stage', 'after-apply'] as const) {
    it(`single-user: a process killed ${step} is finished by a rerun, and no pending data lingers`, async () => {
      const name = step === 'after-stage' ? 'crashstage' : 'crashapply';
      const role = await fx.createRole(`${name}_${fx.suffix}`);
      const secret = `e2e-${run}/${name}`;
      const { path, env } = config([{ name, target: 'main', role, provider: 'bao', secret }]);
      expect((await fx.cli(['--config', path, 'rotate', name], env)).code).toBe(0);
      const seen = new Set(await passwordsIn(p, secret));

      const crashed = await fx.cliProcess(['--config', path, 'rotate', name], { ...env, PGROTATE_FAILPOINT: step });
      expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
      const pending = await p.getPending(secret);
      expect(pending, 'the crashed rotation left its pending value').not.toBeNull();
      for (const pw of await passwordsIn(p, secret)) seen.add(pw);
      // Consumers still read the promoted value, never the pending one.
      expect((await consumerRead(secret))?.rotationId).not.toBe(pending?.rotationId);
      await expectNoLostCredential(fx, p, secret, [role], seen);
      if (step === 'after-apply') expect(await fx.canLogin(role, pending?.password as string)).toBe(true);

      const rerun = await fx.cliProcess(['--config', path, 'rotate', name, '--json'], env);
      expect(rerun.code, rerun.stderr).toBe(0);
      const result = (JSON.parse(rerun.stdout) as { results: Array<{ resumed: boolean; rotationId: string }> })
        .results[0];
      expect(result?.resumed).toBe(true);
      expect(result?.rotationId).toBe(pending?.rotationId);
      const current = await expectCurrentLogsIn(fx, p, secret);
      expect(current.rotationId).toBe(pending?.rotationId);
      expect(await p.getPending(secret)).toBeNull();
      expect((await root()('GET', `secret/metadata/pgrotate-pending/${secret}`)).status).toBe(404);
      for (const pw of await passwordsIn(p, secret)) seen.add(pw);
      await expectNoLostCredential(fx, p, secret, [role], seen);
    });
  }
});
