import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// Issue 24: two accounts managing one role lock each other out (each rotation kills the other's
// stored credential; an alternating pair sets a role it leaves to PASSWORD NULL). The built CLI
// refuses such a config at load (exit 2), naming both accounts and the role, before it connects
// anywhere: the role's verifier and the stored secret stay exactly as they were.

describe('a config in which two accounts manage one role', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  async function verifierOf(role: string): Promise<string | null> {
    const c = await fx.superClient();
    try {
      const r = await c.query<{ p: string | null }>(
        'SELECT rolpassword AS p FROM pg_catalog.pg_authid WHERE rolname = $1',
        [role],
      );
      return r.rows[0]?.p ?? null;
    } finally {
      await c.end();
    }
  }

  it('is refused with exit 2 naming both accounts and the role; nothing changes', async () => {
    const role = await fx.createRole(`shr_${fx.suffix}`, { password: 'shr-initial-password' });
    const other = await fx.createRole(`shr_b_${fx.suffix}`);
    const one = { name: 'shr-one', target: 'main', role, provider: 'local', secret: 'pg/shr-one' };
    const first = fx.writeConfig({ accounts: [one] });
    const ok = await fx.cliProcess(['--config', first.path, 'rotate', 'shr-one'], first.env);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const stored = await new FileProvider({ name: 'local', path: fx.secretsFile }).getCurrent('pg/shr-one');
    expect(stored?.username).toBe(role);
    const secretsBefore = readFileSync(fx.secretsFile, 'utf8');
    const verifierBefore = await verifierOf(role);
    const rotationsBefore = (await fx.stateQuery('SELECT id FROM pgrotate.rotations')).rowCount;

    // A second target spelling the same server differently (localhost, another database), a
    // single-user account there on the same role, and an alternating pair that includes it.
    const main = {
      host: fx.server.host,
      port: fx.server.port,
      database: fx.targetDb,
      sslmode: 'disable',
      admin: { username: fx.rotator, password: 'env:TEST_ROTATOR_PASSWORD' },
    };
    const shared = fx.writeConfig({
      accounts: [
        one,
        { name: 'shr-two', target: 'alias', role, provider: 'local', secret: 'pg/shr-two' },
        {
          name: 'shr-pair',
          target: 'main',
          strategy: 'alternating',
          roles: [other, role],
          gracePeriod: '1h',
          provider: 'local',
          secret: 'pg/shr-pair',
        },
      ],
      extra: { targets: { main, alias: { ...main, host: 'LOCALHOST', database: fx.stateDb } } },
    });
    for (const args of [
      ['rotate', '--all'],
      ['rotate', 'shr-one'],
    ]) {
      const r = await fx.cliProcess(['--config', shared.path, ...args], shared.env);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toContain(
        `accounts[1].role: accounts "shr-one" (accounts[0]) and "shr-two" both manage role "${role}" on targets main and alias, the same server LOCALHOST:${fx.server.port}`,
      );
      expect(r.stderr).toContain(
        `accounts[2].roles[1]: accounts "shr-one" (accounts[0]) and "shr-pair" both manage role "${role}" on target main`,
      );
      expect(r.stdout).toBe('');
    }

    expect(await verifierOf(role)).toBe(verifierBefore);
    expect(readFileSync(fx.secretsFile, 'utf8')).toBe(secretsBefore);
    expect(await fx.canLogin(role, stored?.password ?? '')).toBe(true);
    expect((await fx.stateQuery('SELECT id FROM pgrotate.rotations')).rowCount).toBe(rotationsBefore);
  });
});
