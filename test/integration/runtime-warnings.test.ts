import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MotoServiceInfo } from '../services/moto-service.js';
import type { BaoServerInfo } from '../support/bao-server.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';
import { expectNoRuntimeWarning, warningsVisible } from '../support/runtime-warnings.js';

// The built CLI on the Node the tests run on (24, and 22 in `npm run test:node22`): `rotate` and
// `verify` with each secret store provider print no runtime warning on stderr (no
// DeprecationWarning, ExperimentalWarning or SDK warning). Azure: test/lowkey/runtime-warnings.test.ts.

describe('no runtime warning: rotate and verify with each provider', () => {
  let fx: PgFixture;
  const run = randomUUID().slice(0, 8);
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  /** Two rotations (the first creates the secret, the second replaces it) and a verify, each in a new process. */
  async function rotateTwiceAndVerify(
    name: string,
    providers: Record<string, unknown>,
    providerEnv: NodeJS.ProcessEnv,
  ): Promise<void> {
    const role = await fx.createRole(`warn_${name}_${fx.suffix}`);
    const provider = Object.keys(providers)[0] as string;
    const account = { name: `warn-${name}`, target: 'main', role, provider, secret: `warn-${run}/${name}` };
    const { path, env } = fx.writeConfig({ accounts: [account], providers });
    const childEnv = warningsVisible({ ...env, ...providerEnv });
    for (const args of [
      ['rotate', account.name],
      ['rotate', account.name],
      ['verify', account.name],
    ]) {
      const r = await fx.cliProcess(['--config', path, ...args], childEnv);
      expect(r.code, r.stderr).toBe(0);
      expectNoRuntimeWarning(r.stderr, `${args[0]} (${name} provider)`);
    }
  }

  it('the check sees a warning (a deprecated API in the same kind of child)', async () => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['-e', 'new Buffer(1)'], {
      env: warningsVisible(process.env),
      encoding: 'utf8',
    });
    expect(r.stderr).toMatch(/DeprecationWarning/);
    expect(() => expectNoRuntimeWarning(r.stderr, 'new Buffer')).toThrow(/runtime warning/);
  });

  it('file provider', async () => {
    await rotateTwiceAndVerify('file', { local: { type: 'file', path: fx.secretsFile } }, {});
  });

  it('vault provider (OpenBao)', async () => {
    const bao = service<BaoServerInfo>('bao');
    await rotateTwiceAndVerify(
      'vault',
      { bao: { type: 'vault', address: bao.address, mount: 'secret', token: 'env:BAO_TEST_TOKEN' } },
      { BAO_TEST_TOKEN: bao.rootToken },
    );
  });

  it('aws-secrets-manager provider (moto)', async () => {
    const moto = service<MotoServiceInfo>('moto');
    await rotateTwiceAndVerify(
      'aws',
      { aws: { type: 'aws-secrets-manager', region: moto.region, endpoint: moto.endpoint, maxAttempts: 3 } },
      moto.env,
    );
  });
});
