import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { quoteIdent } from '../../src/core/pg/quote.js';
import { scramVerifier } from '../../src/core/scram/scram-verifier.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { PG16_PLUS, PG_VERSIONS } from '../support/pg-versions.js';
import { pgServer } from '../support/provided.js';
import { freePort } from '../support/free-port.js';

// Invariant I5: each bad input gets a clear error naming the account and target, and leaves the
// account as it was (old password still works, nothing pending, no running rotation).

describe.each(PG_VERSIONS)('bad input on %s', (serverName) => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer(serverName));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  async function runningRotations(): Promise<number> {
    const c = await fx.rotatorClient(fx.stateDb);
    try {
      const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM pgrotate.rotations WHERE status = 'running'`);
      return Number(r.rows[0]?.n);
    } catch {
      return 0; // schema not created yet
    } finally {
      await c.end();
    }
  }

  it('unknown account: usage error naming it', async () => {
    const { path, env } = fx.writeConfig({ accounts: [] });
    const r = await fx.cli(['--config', path, 'rotate', 'nosuch'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown account "nosuch"/);
  });

  it('role that does not exist: error names account, role and target; nothing staged', async () => {
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'ghost', target: 'main', role: `ghost_${fx.suffix}`, provider: 'local', secret: 'pg/ghost' }],
    });
    const r = await fx.cli(['--config', path, 'rotate', 'ghost'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`account ghost: role "ghost_${fx.suffix}" does not exist on target main`));
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    expect(await provider.getPending('pg/ghost')).toBeNull();
    expect(await provider.getCurrent('pg/ghost')).toBeNull();
    expect(await runningRotations()).toBe(0);
    const status = JSON.parse((await fx.cli(['--config', path, 'status', '--json'], env)).stdout) as {
      accounts: Array<{ lastStatus: string; lastError: string }>;
    };
    expect(status.accounts[0]).toMatchObject({ lastStatus: 'failed' });
    expect(status.accounts[0]?.lastError).toMatch(/does not exist/);
  });

  it('role names with quotes, spaces, unicode and SQL are quoted; nothing else executes', async () => {
    const sentinel = await fx.createRole(`x_${fx.suffix}`);
    const names = [`we"ird ${fx.suffix}`, `ünï cødé ${fx.suffix}`, `"; DROP ROLE ${sentinel}; --${fx.suffix}`];
    const accounts = [];
    for (const [i, n] of names.entries()) {
      await fx.createRole(n);
      accounts.push({ name: `odd${i}`, target: 'main', role: n, provider: 'local', secret: `pg/odd${i}` });
    }
    const { path, env } = fx.writeConfig({ accounts });
    const r = await fx.cli(['--config', path, 'rotate', '--all', '--json'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    for (const [i, n] of names.entries()) {
      const v = await provider.getCurrent(`pg/odd${i}`);
      expect(v?.username).toBe(n);
      expect(await fx.canLogin(n, v?.password as string)).toBe(true);
    }
    const c = await fx.superClient();
    const still = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [sentinel]);
    await c.end();
    expect(still.rowCount).toBe(1);
  });

  it('superuser target: refused unless allowSuperuser, and then only with a superuser admin', async () => {
    const boss = await fx.createRole(`boss_${fx.suffix}`, { superuser: true, password: 'boss-initial-password' });
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'boss', target: 'main', role: boss, provider: 'local', secret: 'pg/boss' }],
    });
    const r = await fx.cli(['--config', path, 'rotate', 'boss'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/account boss: role "boss_\w+" on target main is a superuser; set allowSuperuser: true/);
    expect(await fx.canLogin(boss, 'boss-initial-password')).toBe(true);

    const allowed = fx.writeConfig({
      accounts: [
        { name: 'boss', target: 'main', role: boss, provider: 'local', secret: 'pg/boss', allowSuperuser: true },
      ],
    });
    const r2 = await fx.cli(['--config', allowed.path, 'rotate', 'boss'], allowed.env);
    expect(r2.code).toBe(1);
    expect(r2.stdout).toMatch(/only a superuser may change a superuser's password/);
    expect(await fx.canLogin(boss, 'boss-initial-password')).toBe(true);

    const asSuper = fx.writeConfig({
      accounts: [
        { name: 'boss', target: 'main', role: boss, provider: 'local', secret: 'pg/boss', allowSuperuser: true },
      ],
      targetExtra: { admin: { username: fx.server.superuser, password: 'env:TEST_SUPER_PASSWORD' } },
    });
    const r3 = await fx.cli(['--config', asSuper.path, 'rotate', 'boss'], {
      ...asSuper.env,
      TEST_SUPER_PASSWORD: fx.server.superPassword,
    });
    expect(r3.code, r3.stdout).toBe(0);
    expect(await fx.canLogin(boss, 'boss-initial-password')).toBe(false);
  });

  it('unreachable database: error names account and target; provider untouched', async () => {
    const role = await fx.createRole(`unr_${fx.suffix}`);
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'unr', target: 'main', role, provider: 'local', secret: 'pg/unr' }],
      targetExtra: { port: await freePort(), connectTimeout: '2s' },
    });
    const r = await fx.cli(['--config', path, 'rotate', 'unr'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/account unr: target main \(127\.0\.0\.1:\d+\/t_\w+\): cannot connect as admin/);
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    expect(await provider.getPending('pg/unr')).toBeNull();
  });

  it('provider file not writable: error names account and secret; old password still works', async () => {
    const role = await fx.createRole(`ro_${fx.suffix}`, { password: 'ro-initial-password' });
    const blocker = join(fx.dir, 'not-a-dir');
    writeFileSync(blocker, '');
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'ro', target: 'main', role, provider: 'ro', secret: 'pg/ro' }],
      providers: { ro: { type: 'file', path: join(blocker, 'secrets.json') } },
    });
    const r = await fx.cli(['--config', path, 'rotate', 'ro'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/account ro: could not .* secret pg\/ro in provider ro/);
    expect(await fx.canLogin(role, 'ro-initial-password')).toBe(true);
  });

  it('admin without the right to alter the role: a clear error, nothing changed', async () => {
    // Created by the superuser, so the CREATEROLE rotator has no ADMIN OPTION on it (16+);
    // on 15 a NOLOGIN role is refused instead.
    const c = await fx.superClient();
    const role = `noadm_${fx.suffix}`;
    await c.query(`CREATE ROLE ${quoteIdent(role)} ${!PG16_PLUS.includes(serverName) ? 'NOLOGIN' : 'LOGIN'}`);
    await c.end();
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'noadm', target: 'main', role, provider: 'local', secret: 'pg/noadm' }],
    });
    const r = await fx.cli(['--config', path, 'rotate', 'noadm'], env);
    expect(r.code).toBe(1);
    if (!PG16_PLUS.includes(serverName))
      expect(r.stdout).toMatch(/account noadm: role "noadm_\w+" on target main is NOLOGIN/);
    else
      expect(r.stdout).toMatch(
        /account noadm: cannot change the password of role "noadm_\w+" on target main: .*no ADMIN OPTION .*GRANT/,
      );
    expect(await runningRotations()).toBe(0);
    const su = await fx.superClient();
    await su.query(`DROP ROLE ${quoteIdent(role)}`);
    await su.end();
  });
  // PostgreSQL 13 and 15 need no ADMIN OPTION (the single-role test above covers them there).
  // PostgreSQL 15 needs no ADMIN OPTION (the single-role test above covers it there).
  if (PG16_PLUS.includes(serverName))
    it('an alternating pair lacking ADMIN OPTION on both roles (16+) gets both GRANTs in one error; nothing changed', async () => {
      // Both created by the superuser with passwords, so the rotator holds no ADMIN OPTION on either.
      const c = await fx.superClient();
      const roles = [`noadm_a_${fx.suffix}`, `noadm_b_${fx.suffix}`];
      for (const role of roles)
        await c.query(
          `CREATE ROLE ${quoteIdent(role)} LOGIN PASSWORD '${await scramVerifier('noadm-initial-password')}'`,
        );
      await c.end();
      const { path, env } = fx.writeConfig({
        accounts: [
          {
            name: 'noadm-pair',
            target: 'main',
            strategy: 'alternating',
            roles,
            gracePeriod: '1h',
            provider: 'local',
            secret: 'pg/noadm-pair',
          },
        ],
      });
      const r = await fx.cliProcess(['--config', path, 'rotate', 'noadm-pair'], env);
      expect(r.code).toBe(1);
      const grant = (role: string) => `GRANT "${role}" TO "${fx.rotator}" WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`;
      expect(r.stdout).toContain(
        `account noadm-pair: cannot change the password of roles "${roles[0]}" and "${roles[1]}" on target main: admin login ${fx.rotator} has no ADMIN OPTION on them (PostgreSQL 16+): ${grant(roles[0] as string)}; ${grant(roles[1] as string)}`,
      );
      for (const role of roles) expect(await fx.canLogin(role, 'noadm-initial-password')).toBe(true);
      const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
      expect(await provider.getPending('pg/noadm-pair')).toBeNull();
      expect(await provider.getCurrent('pg/noadm-pair')).toBeNull();
      expect(await runningRotations()).toBe(0);
      // The GRANTs as printed are what the admin needs: run them (as the superuser) and it rotates.
      const su = await fx.superClient();
      for (const role of roles) await su.query(grant(role));
      const ok = await fx.cliProcess(['--config', path, 'rotate', 'noadm-pair'], env);
      expect(ok.code, ok.stdout).toBe(0);
      await su.query(`DROP ROLE ${roles.map((role) => quoteIdent(role)).join(', ')}`);
      await su.end();
    });

  it('an expired login is refused before anything changes; the previous credential stays current', async () => {
    const role = await fx.createRole(`rb_${fx.suffix}`);
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'rb', target: 'main', role, provider: 'local', secret: 'pg/rb' }],
      defaults: { verifyAttempts: 1 },
    });
    expect((await fx.cli(['--config', path, 'rotate', 'rb'], env)).code).toBe(0);
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    const before = await provider.getCurrent('pg/rb');
    // An expired login: PostgreSQL would refuse any password, so verify could never succeed.
    // (The rollback after a verify failure is tested in login-proof.test.ts.)
    const c = await fx.rotatorClient('postgres');
    await c.query(`ALTER ROLE ${quoteIdent(role)} VALID UNTIL '2000-01-01'`);
    const r = await fx.cli(['--config', path, 'rotate', 'rb'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/account rb: role "rb_\w+" on target main expired at 2000-01-01T\S+ \(VALID UNTIL\)/);
    expect((await provider.getCurrent('pg/rb'))?.password).toBe(before?.password);
    expect(await provider.getPending('pg/rb')).toBeNull();
    await c.query(`ALTER ROLE ${quoteIdent(role)} VALID UNTIL 'infinity'`);
    await c.end();
    expect(await fx.canLogin(role, before?.password as string)).toBe(true);
    expect(await runningRotations()).toBe(0);
  });
});

describe('--terminate-sessions without the privilege to end sessions', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('is refused before anything changes, naming the GRANT to run', async () => {
    const role = await fx.createRole(`ts_${fx.suffix}`, { password: 'ts-initial-password' });
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'ts', target: 'main', role, provider: 'local', secret: 'pg/ts' }],
    });
    const r = await fx.cli(['--config', path, 'rotate', 'ts', '--terminate-sessions'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /account ts: --terminate-sessions needs the admin login rot_\w+ on target main to end other roles' sessions: GRANT pg_signal_backend TO "rot_\w+"/,
    );
    expect(await fx.canLogin(role, 'ts-initial-password')).toBe(true);
    expect(await new FileProvider({ name: 'local', path: fx.secretsFile }).getPending('pg/ts')).toBeNull();
  });
});
