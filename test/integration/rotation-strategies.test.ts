import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { PG_VERSIONS } from '../support/pg-versions.js';
import { pgServer } from '../support/provided.js';

// Both strategies end to end through the CLI, on every tested PostgreSQL version (PG_VERSIONS).

describe.each(PG_VERSIONS)('rotation on %s', (serverName) => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer(serverName));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('single-user: the new password logs in and the old one is refused', async () => {
    const role = await fx.createRole(`app_${fx.suffix}`, { password: 'initial-unmanaged-password-1' });
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'app', target: 'main', role, provider: 'local', secret: 'pg/app' }],
    });
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });

    const first = await fx.cli(['--config', path, 'rotate', 'app', '--json'], env);
    expect(first.code, first.stderr).toBe(0);
    const v1 = await provider.getCurrent('pg/app');
    expect(v1?.username).toBe(role);
    expect(await fx.canLogin(role, 'initial-unmanaged-password-1')).toBe(false);
    expect(await fx.canLogin(role, v1?.password as string)).toBe(true);

    const second = await fx.cli(['--config', path, 'rotate', 'app', '--reason', 'test'], env);
    expect(second.code, second.stderr).toBe(0);
    const v2 = await provider.getCurrent('pg/app');
    expect(v2?.password).not.toBe(v1?.password);
    expect(await fx.canLogin(role, v1?.password as string)).toBe(false);
    expect(await fx.canLogin(role, v2?.password as string)).toBe(true);
    expect((await provider.getPrevious('pg/app'))?.password).toBe(v1?.password);
    expect(v2).toMatchObject({ host: fx.server.host, port: fx.server.port, dbname: fx.targetDb, engine: 'postgres' });

    const json = JSON.parse(first.stdout) as { results: Array<{ outcome: string; oldCredentialExpiresAt: string }> };
    expect(json.results[0]?.outcome).toBe('succeeded');
  });

  it('alternating: roles take turns and the old login expires at the recorded time (rolvaliduntil)', async () => {
    const owner = `own_${fx.suffix}`;
    const su = await fx.rotatorClient('postgres');
    await su.query(`CREATE ROLE ${owner} NOLOGIN`);
    await su.end();
    const a = await fx.createRole(`rep_a_${fx.suffix}`, { inRole: owner });
    const b = await fx.createRole(`rep_b_${fx.suffix}`, { inRole: owner });
    const { path, env } = fx.writeConfig({
      accounts: [
        {
          name: 'reports',
          target: 'main',
          strategy: 'alternating',
          roles: [a, b],
          gracePeriod: '2h',
          provider: 'local',
          secret: 'pg/reports',
        },
      ],
    });
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    const validUntil = async (role: string) => {
      const c = await fx.superClient();
      const r = await c.query<{ v: Date | null }>('SELECT rolvaliduntil AS v FROM pg_roles WHERE rolname = $1', [role]);
      await c.end();
      return r.rows[0]?.v ?? null;
    };

    expect((await fx.cli(['--config', path, 'rotate', 'reports'], env)).code).toBe(0);
    const v1 = await provider.getCurrent('pg/reports');
    expect(v1?.username).toBe(a);

    const r2 = await fx.cli(['--config', path, 'rotate', 'reports', '--json'], env);
    expect(r2.code, r2.stderr).toBe(0);
    const v2 = await provider.getCurrent('pg/reports');
    expect(v2?.username).toBe(b);
    // Both work during the grace period; the old one carries the recorded expiry.
    expect(await fx.canLogin(a, v1?.password as string)).toBe(true);
    expect(await fx.canLogin(b, v2?.password as string)).toBe(true);
    const recorded = (JSON.parse(r2.stdout) as { results: Array<{ oldCredentialExpiresAt: string }> }).results[0]
      ?.oldCredentialExpiresAt as string;
    const expiry = await validUntil(a);
    expect(expiry?.getTime()).toBe(new Date(recorded).getTime());
    expect(new Date(recorded).getTime() - Date.now()).toBeGreaterThan(2 * 3600_000 - 60_000);

    const status = await fx.cli(['--config', path, 'status', '--json'], env);
    const acc = (
      JSON.parse(status.stdout) as { accounts: Array<{ activeRole: string; oldCredentialExpiresAt: string }> }
    ).accounts[0];
    expect(acc?.activeRole).toBe(b);
    expect(acc?.oldCredentialExpiresAt).toBe(recorded);

    // Third rotation returns to a: its expiry is cleared, b gets one.
    expect((await fx.cli(['--config', path, 'rotate', 'reports'], env)).code).toBe(0);
    const v3 = await provider.getCurrent('pg/reports');
    expect(v3?.username).toBe(a);
    const c = await fx.superClient();
    const inf = await c.query<{ cleared: boolean }>(
      "SELECT rolvaliduntil = 'infinity' AS cleared FROM pg_roles WHERE rolname = $1",
      [a],
    );
    await c.end();
    expect(inf.rows[0]?.cleared).toBe(true);
    expect(await fx.canLogin(a, v3?.password as string)).toBe(true);
    expect(await fx.canLogin(a, v1?.password as string)).toBe(false);
    expect(await validUntil(b)).not.toBeNull();
  });

  it('alternating: a reader polling the provider throughout several rotations always logs in', async () => {
    const a = await fx.createRole(`poll_a_${fx.suffix}`);
    const b = await fx.createRole(`poll_b_${fx.suffix}`);
    const { path, env } = fx.writeConfig({
      accounts: [
        {
          name: 'polled',
          target: 'main',
          strategy: 'alternating',
          roles: [a, b],
          gracePeriod: '1h',
          provider: 'local',
          secret: 'pg/polled',
        },
      ],
    });
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    expect((await fx.cli(['--config', path, 'rotate', 'polled'], env)).code).toBe(0);
    let stop = false;
    let reads = 0;
    const failures: string[] = [];
    const reader = (async () => {
      while (!stop) {
        const v = await provider.getCurrent('pg/polled');
        if (v && !(await fx.canLogin(v.username, v.password))) failures.push(`${v.username} ${v.rotationId ?? ''}`);
        reads++;
      }
    })();
    for (let i = 0; i < 5; i++) expect((await fx.cli(['--config', path, 'rotate', 'polled'], env)).code).toBe(0);
    stop = true;
    await reader;
    expect(reads).toBeGreaterThan(5);
    expect(failures).toEqual([]);
  });
});
