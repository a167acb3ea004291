import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setPasswordVerifier } from '../../src/core/pg/role-admin.js';
import { scramVerifier } from '../../src/core/scram/scram-verifier.js';
import { FileProvider } from '../../providers/file/file-provider.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { PG_VERSIONS } from '../support/pg-versions.js';
import { pgServer } from '../support/provided.js';

describe.each(PG_VERSIONS)('in-process SCRAM verifier against %s', (serverName) => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer(serverName));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('ALTER ROLE ... PASSWORD <verifier> stores it verbatim and the password logs in', async () => {
    const role = await fx.createRole(`scram_${fx.suffix}`);
    const password = 'Correct-Horse-Battery-Staple-42';
    const verifier = await scramVerifier(password, 4096);
    const c = await fx.rotatorClient();
    await setPasswordVerifier(c, role, verifier);
    await c.end();
    const su = await fx.superClient();
    const stored = await su.query<{ p: string }>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [role]);
    await su.end();
    expect(stored.rows[0]?.p).toBe(verifier);
    expect(await fx.canLogin(role, password)).toBe(true);
    expect(await fx.canLogin(role, `${password}x`)).toBe(false);
  });

  it('the configured iteration count reaches the server', async () => {
    const role = await fx.createRole(`iter_${fx.suffix}`);
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'iter', target: 'main', role, provider: 'local', secret: 'pg/iter' }],
      defaults: { scramIterations: 10000 },
    });
    expect((await fx.cli(['--config', path, 'rotate', 'iter'], env)).code).toBe(0);
    const su = await fx.superClient();
    const stored = await su.query<{ p: string }>(`SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1`, [role]);
    await su.end();
    expect(stored.rows[0]?.p).toMatch(/^SCRAM-SHA-256\$10000:/);
    const v = await new FileProvider({ name: 'local', path: fx.secretsFile }).getCurrent('pg/iter');
    expect(await fx.canLogin(role, v?.password as string)).toBe(true);
  });
});
