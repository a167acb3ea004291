import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { expectCurrentLogsIn } from '../support/invariants.js';
import {
  auditCounts,
  eventually,
  stateClient,
  startWorker,
  testQueue,
  writeJobsConfig,
} from '../support/jobs-fixture.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';
import { spreadOffset } from '../../src/core/schedule/spread-offset.js';
import { wallAt } from '../../src/core/schedule/zone-clock.js';

// Scheduling with the default queue backend (BullMQ on PostgreSQL, in the state database):
// short-interval accounts rotate by themselves, manual ones do not, new accounts are spread,
// `rotate --wait` goes through the workers, and SIGTERM exits 0.

describe('scheduled rotation (PostgreSQL queue backend)', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('every-2s accounts rotate on their own, a manual one only on demand; SIGTERM exits 0', async () => {
    const roles = await Promise.all(['s1', 's2', 'man'].map((n) => fx.createRole(`${n}_${fx.suffix}`)));
    const [r1, r2, rm] = roles as [string, string, string];
    const { path, env } = writeJobsConfig(
      fx,
      {
        accounts: [
          { name: 's1', target: 'main', role: r1, provider: 'local', secret: 'pg/s1', schedule: { every: '2s' } },
          { name: 's2', target: 'main', role: r2, provider: 'local', secret: 'pg/s2', schedule: { every: '2s' } },
          { name: 'man', target: 'main', role: rm, provider: 'local', secret: 'pg/man', schedule: 'manual' },
        ],
      },
      { queue: testQueue('postgres') },
    );
    const worker = startWorker(fx, path, env);
    try {
      await eventually(
        async () => {
          const n = await auditCounts(fx, 'rotation.succeeded');
          return (n.get('s1') ?? 0) >= 2 && (n.get('s2') ?? 0) >= 2;
        },
        'two scheduled rotations of s1 and s2',
        40_000,
      );
      expect((await auditCounts(fx, 'rotation.succeeded')).get('man')).toBeUndefined();
      const c = await stateClient(fx);
      const rows = (
        await c.query<{ name: string; next_due_at: Date | null; schedule: string }>(
          'SELECT name, next_due_at, schedule FROM pgrotate.accounts ORDER BY name',
        )
      ).rows;
      await c.end();
      expect(rows.find((r) => r.name === 'man')?.next_due_at).toBeNull();
      expect(rows.find((r) => r.name === 's1')?.schedule).toBe('every:2000');

      // On demand through the queue: `rotate --wait` waits for the worker's outcome.
      const res = await fx.cli(['--config', path, 'rotate', 'man', '--wait', '--json', '--reason', 'test'], env);
      expect(res.code, res.stderr).toBe(0);
      const out = JSON.parse(res.stdout) as { results: Array<{ account: string; outcome: string }> };
      expect(out.results).toEqual([expect.objectContaining({ account: 'man', outcome: 'succeeded' })]);
      expect((await auditCounts(fx, 'rotation.succeeded')).get('man')).toBe(1);
      const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
      for (const s of ['pg/s1', 'pg/s2', 'pg/man']) await expectCurrentLogsIn(fx, provider, s);
    } finally {
      const exit = await worker.stop();
      expect(exit, worker.output().slice(-2000)).toEqual({ code: 0, signal: null });
    }
  });

  it('new accounts are spread: same interval, different due times, none due at once', async () => {
    const accounts = Array.from({ length: 40 }, (_, i) => ({
      name: `spread-${i}`,
      target: 'main',
      role: `nobody_${i}`,
      provider: 'local',
      secret: `pg/spread-${i}`,
    }));
    const { path, env } = writeJobsConfig(fx, { accounts, defaults: { schedule: { every: '1d' } } }, {});
    const t0 = Date.now();
    // run-due syncs the config first; a new fleet is due within its spread window, not now.
    const res = await fx.cli(['--config', path, 'run-due'], env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/run-due: 0 due, 0 succeeded, 0 failed/);
    const c = await stateClient(fx);
    const rows = (
      await c.query<{ next_due_at: Date }>("SELECT next_due_at FROM pgrotate.accounts WHERE name LIKE 'spread-%'")
    ).rows;
    await c.end();
    expect(rows).toHaveLength(40);
    const offsets = rows.map((r) => r.next_due_at.getTime() - t0);
    expect(new Set(rows.map((r) => r.next_due_at.getTime())).size).toBe(40);
    expect(Math.max(...offsets)).toBeLessThanOrEqual(0.1 * 86_400_000);
    // 40 accounts over 2.4 hours: no minute holds more than a handful.
    const perMinute = new Map<number, number>();
    for (const o of offsets) perMinute.set(Math.floor(o / 60_000), (perMinute.get(Math.floor(o / 60_000)) ?? 0) + 1);
    expect(Math.max(...perMinute.values())).toBeLessThanOrEqual(3);
  });

  it('cron in a time zone: due at the local time (plus the spread offset); a changed zone re-plans', async () => {
    const accounts = ['tz-a', 'tz-b', 'tz-c'].map((name, i) => ({
      name,
      target: 'main',
      role: `nobody_tz_${i}`,
      provider: 'local',
      secret: `pg/${name}`,
    }));
    const plan = async (timezone: string) => {
      const schedule = { cron: '0 3 * * *', timezone, window: '1h' };
      const { path, env } = writeJobsConfig(fx, { accounts, defaults: { schedule } }, {});
      const res = await fx.cli(['--config', path, 'run-due'], env);
      expect(res.code, res.stderr).toBe(0);
      const c = await stateClient(fx);
      const sql = "SELECT name, next_due_at, schedule FROM pgrotate.accounts WHERE name LIKE 'tz-%' ORDER BY name";
      const rows = (await c.query<{ name: string; next_due_at: Date; schedule: string }>(sql)).rows;
      await c.end();
      expect(rows).toHaveLength(3);
      return rows;
    };
    const t0 = Date.now();
    for (const zone of ['Asia/Kathmandu', 'America/New_York']) {
      for (const r of await plan(zone)) {
        const cronTime = new Date(r.next_due_at.getTime() - spreadOffset(r.name, 3_600_000));
        // 03:00 on the zone's wall clock (Kathmandu is +05:45, so never a whole UTC hour).
        expect(wallAt(zone, cronTime).toISOString().slice(11, 19), `${r.name} ${zone}`).toBe('03:00:00');
        expect(cronTime.getTime()).toBeGreaterThan(t0);
        expect(cronTime.getTime() - t0).toBeLessThanOrEqual(86_400_000 + 60_000);
        expect(r.schedule).toBe(`cron:0 3 * * *:3600000:${zone}`);
      }
    }
  });
});
