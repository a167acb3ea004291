import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// The secret says when to refresh (issue 27), through the CLI on PostgreSQL 15 with the file
// provider: the stored JSON carries rotatesAt (the next due time `status` reports) and, for an
// alternating pair, previousValidUntil: never later than the previous role's real rolvaliduntil
// in pg_authid, earlier by at most the rotation's own duration (the grace counts from the switch). A manual account's secret has no rotatesAt. Run `npm run build` first.

const HOUR = 3_600_000;

describe('secret refresh times on pg15 (file provider)', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  /** The current value exactly as a consumer reads it from the secrets file. */
  const stored = (secret: string) =>
    (JSON.parse(readFileSync(fx.secretsFile, 'utf8')) as Record<string, Record<string, unknown>>)[secret];

  const realValidUntil = async (role: string) => {
    const c = await fx.superClient();
    const r = await c.query<{ v: Date | null }>('SELECT rolvaliduntil AS v FROM pg_authid WHERE rolname = $1', [role]);
    await c.end();
    return r.rows[0]?.v ?? null;
  };

  it('alternating every 30d: rotatesAt is the next due time, previousValidUntil at most the previous role’s rolvaliduntil', async () => {
    const owner = `srt_own_${fx.suffix}`;
    const su = await fx.rotatorClient('postgres');
    await su.query(`CREATE ROLE ${owner} NOLOGIN`);
    await su.end();
    const a = await fx.createRole(`srt_a_${fx.suffix}`, { inRole: owner });
    const b = await fx.createRole(`srt_b_${fx.suffix}`, { inRole: owner });
    const single = await fx.createRole(`srt_m_${fx.suffix}`, { password: 'initial-unmanaged-password-1' });
    const { path, env } = fx.writeConfig({
      accounts: [
        {
          name: 'reports',
          target: 'main',
          strategy: 'alternating',
          roles: [a, b],
          gracePeriod: '2h',
          schedule: { every: '30d' },
          provider: 'local',
          secret: 'pg/srt-reports',
        },
        {
          name: 'manual',
          target: 'main',
          role: single,
          schedule: 'manual',
          provider: 'local',
          secret: 'pg/srt-manual',
        },
      ],
    });

    // First turn of the pair: no previous role had a managed credential.
    const r1 = await fx.cli(['--config', path, 'rotate', 'reports'], env);
    expect(r1.code, r1.stderr).toBe(0);
    const v1 = stored('pg/srt-reports') as Record<string, unknown>;
    expect(v1.username).toBe(a);
    expect(v1).not.toHaveProperty('previousValidUntil');
    expect(typeof v1.rotatesAt).toBe('string');

    const before = Date.now();
    const r2 = await fx.cli(['--config', path, 'rotate', 'reports', '--json'], env);
    expect(r2.code, r2.stderr).toBe(0);
    const v2 = stored('pg/srt-reports') as Record<string, unknown>;
    expect(v2.username).toBe(b);
    // The old fields are all still there: no consumer breaks.
    expect(v2).toMatchObject({ engine: 'postgres', host: fx.server.host, port: fx.server.port, dbname: fx.targetDb });
    const real = await realValidUntil(a);
    expect(real).not.toBeNull();
    const announced = new Date(v2.previousValidUntil as string).getTime();
    expect(real!.getTime()).toBeGreaterThanOrEqual(announced);
    expect(real!.getTime() - announced).toBeLessThanOrEqual(Date.now() - before);
    expect(real!.getTime()).toBeGreaterThanOrEqual(before + 2 * HOUR - 1_000);
    expect(real!.getTime()).toBeLessThanOrEqual(Date.now() + 2 * HOUR);
    const result = (JSON.parse(r2.stdout) as { results: Array<{ oldCredentialExpiresAt: string; nextDueAt: string }> })
      .results[0];
    expect(new Date(result?.oldCredentialExpiresAt ?? '').getTime()).toBe(real?.getTime());
    expect(result?.nextDueAt).toBe(v2.rotatesAt);
    // The previous role still logs in with the password the previous secret held, until then.
    expect(await fx.canLogin(a, v1.password as string)).toBe(true);

    const status = await fx.cli(['--config', path, 'status', '--json'], env);
    const acc = (JSON.parse(status.stdout) as { accounts: Array<{ name: string; nextDueAt: string }> }).accounts.find(
      (x) => x.name === 'reports',
    );
    expect(acc?.nextDueAt).toBe(v2.rotatesAt);
    const due = new Date(v2.rotatesAt as string).getTime();
    expect(due).toBeGreaterThan(before + 29 * 24 * HOUR);
    expect(due).toBeLessThanOrEqual(Date.now() + 30 * 24 * HOUR);

    // A manual account: never due, so no rotatesAt (and no previous role).
    const m = await fx.cli(['--config', path, 'rotate', 'manual'], env);
    expect(m.code, m.stderr).toBe(0);
    const vm = stored('pg/srt-manual') as Record<string, unknown>;
    expect(vm.username).toBe(single);
    expect(vm).not.toHaveProperty('rotatesAt');
    expect(vm).not.toHaveProperty('previousValidUntil');
  });
});
