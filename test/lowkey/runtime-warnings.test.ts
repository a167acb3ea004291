import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';
import { expectNoRuntimeWarning, warningsVisible } from '../support/runtime-warnings.js';
import { lowkey, lowkeyProviderConfig, uniqueSecretName } from './azure-lowkey-harness.js';

// The Azure Key Vault provider's part of test/integration/runtime-warnings.test.ts: the built CLI
// rotates twice and verifies through Lowkey Vault, and prints no runtime warning on stderr.

describe(
  'no runtime warning: rotate and verify with the azure-key-vault provider (Lowkey Vault)',
  { timeout: 120_000 },
  () => {
    let fx: PgFixture;
    beforeAll(async () => {
      fx = await createPgFixture(pgServer('pg15'));
    });
    afterAll(async () => {
      await fx?.cleanup();
    });

    it('rotate, rotate, verify', async () => {
      const info = lowkey();
      const role = await fx.createRole(`warn_az_${fx.suffix}`);
      const account = { name: 'warn-az', target: 'main', role, provider: 'az', secret: uniqueSecretName('pg-warn') };
      const { path, env } = fx.writeConfig({ providers: { az: lowkeyProviderConfig(info) }, accounts: [account] });
      const childEnv = warningsVisible({ ...env, AZ_TOKEN: info.token });
      for (const args of [
        ['rotate', account.name],
        ['rotate', account.name],
        ['verify', account.name],
      ]) {
        const r = await fx.cliProcess(['--config', path, ...args], childEnv);
        expect(r.code, r.stderr).toBe(0);
        expectNoRuntimeWarning(r.stderr, `${args[0]} (azure-key-vault provider)`);
      }
    });
  },
);
