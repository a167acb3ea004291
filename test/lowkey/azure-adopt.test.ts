import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextDueAfter } from '../../src/core/schedule/next-due.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';
import {
  consumerClient,
  lowkey,
  lowkeyProviderConfig,
  uniqueSecretName,
  versionCount,
} from './azure-lowkey-harness.js';

// onboard: adopt with Azure Key Vault (Lowkey Vault, pg15): an existing secret that logs in is
// adopted with no new version and no password change, and its first rotation is due one
// interval after the secret's `updated` time (issue 29.2; the other stores: onboard-adopt.test.ts).

describe('onboard: adopt with Azure Key Vault (Lowkey Vault, pg15)', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('the first rotation is due one interval after the secret was updated', async () => {
    const info = lowkey();
    const client = consumerClient(info);
    const role = await fx.createRole(`az_ad_${fx.suffix}`, { password: 'adopt-azure-Pw-10' });
    const secret = uniqueSecretName('pg-adopt');
    const set = await client.setSecret(secret, JSON.stringify({ username: role, password: 'adopt-azure-Pw-10' }));
    const updated = set.properties.updatedOn as Date;
    const { path, env: baseEnv } = fx.writeConfig({
      providers: { az: lowkeyProviderConfig(info) },
      defaults: { onboard: 'adopt', schedule: { every: '30d' } },
      accounts: [{ name: 'az-adopt', target: 'main', role, provider: 'az', secret }],
    });
    const env = { ...baseEnv, AZ_TOKEN: info.token };
    const c = await fx.superClient();
    const verifier = async () =>
      (await c.query<{ v: string }>('SELECT rolpassword AS v FROM pg_authid WHERE rolname = $1', [role])).rows[0]?.v;
    try {
      const before = await verifier();
      const run = await fx.cli(['--config', path, 'run-due'], env);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/run-due: 0 due/);
      expect(await verifier()).toBe(before);
    } finally {
      await c.end();
    }
    expect(await versionCount(client, secret)).toBe(1);
    const st = await fx.cli(['--config', path, 'status', '--json'], env);
    const row = (JSON.parse(st.stdout) as { accounts: Array<Record<string, string>> }).accounts[0] ?? {};
    expect(row.lastStatus).toBe('adopted');
    expect(new Date(row.adoptedFrom as string).getTime()).toBe(updated.getTime());
    expect(new Date(row.nextDueAt as string).getTime()).toBe(
      nextDueAfter({ every: 30 * 86_400_000 }, updated, 'az-adopt')?.getTime(),
    );
  });
});
