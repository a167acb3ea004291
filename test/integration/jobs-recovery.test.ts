import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { expectCurrentLogsIn, expectNoLostCredential, passwordsIn } from '../support/invariants.js';
import {
  auditCounts,
  eventually,
  makeDue,
  startWorker,
  stateClient,
  testQueue,
  waitForAccounts,
  writeJobsConfig,
} from '../support/jobs-fixture.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';
import { restartRedisServer, type RedisServerInfo } from '../support/redis-server.js';

// Failures of the machinery around a rotation: a worker SIGKILLed between ALTER ROLE and
// recording it (the job is handed to another worker, which resumes the rotation), and Redis
// restarting empty mid-run (workers reconnect, the scheduler re-queues what is still due).

describe('worker and queue failures', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('a worker killed after apply: another worker resumes the rotation; I1-I3 hold', async () => {
    const role = await fx.createRole(`crash_${fx.suffix}`, { password: 'unmanaged-initial-password-1' });
    const { path, env } = writeJobsConfig(
      fx,
      {
        accounts: [
          { name: 'crash', target: 'main', role, provider: 'local', secret: 'pg/crash', schedule: { every: '1d' } },
        ],
      },
      { queue: testQueue('postgres') },
    );
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    const seen = new Set<string>(['unmanaged-initial-password-1']);
    const doomed = startWorker(fx, path, {
      ...env,
      PGROTATE_FAILPOINT: 'after-apply',
      PGROTATE_FAILPOINT_ACCOUNT: 'crash',
    });
    await waitForAccounts(fx, 1);
    await makeDue(fx, ['crash']);
    const died = await doomed.exited;
    expect(died.signal, doomed.output().slice(-1500)).toBe('SIGKILL');
    for (const p of await passwordsIn(provider, 'pg/crash')) seen.add(p);
    // Crashed between ALTER ROLE and recording it: PostgreSQL has the pending password.
    await expectNoLostCredential(fx, provider, 'pg/crash', [role], seen);

    const rescuer = startWorker(fx, path, env);
    try {
      await eventually(
        async () => (await auditCounts(fx, 'rotation.succeeded')).get('crash') === 1,
        'the resumed rotation to succeed',
        40_000,
      );
    } finally {
      expect(await rescuer.stop(), rescuer.output().slice(-1500)).toEqual({ code: 0, signal: null });
    }
    for (const p of await passwordsIn(provider, 'pg/crash')) seen.add(p);
    expect((await auditCounts(fx, 'rotation.resumed')).get('crash')).toBeGreaterThanOrEqual(1);
    const c = await stateClient(fx);
    const rows = (await c.query<{ status: string }>("SELECT status FROM pgrotate.rotations WHERE account = 'crash'"))
      .rows;
    await c.end();
    // One rotation record, resumed rather than started again (I3).
    expect(rows.map((r) => r.status)).toEqual(['succeeded']);
    await expectCurrentLogsIn(fx, provider, 'pg/crash');
    await expectNoLostCredential(fx, provider, 'pg/crash', [role], seen);
    expect(await fx.canLogin(role, 'unmanaged-initial-password-1')).toBe(false);
  });

  it('Redis restarted empty during work: workers reconnect and finish; nothing rotated twice', async () => {
    const redis = service<RedisServerInfo>('redis');
    const names = Array.from({ length: 16 }, (_, i) => `rr-${i}`);
    const roles = await Promise.all(names.map((_, i) => fx.createRole(`rr_${i}_${fx.suffix}`)));
    const { path, env } = writeJobsConfig(
      fx,
      {
        accounts: names.map((name, i) => ({
          name,
          target: 'main',
          role: roles[i],
          provider: 'local',
          secret: `pg/${name}`,
        })),
        defaults: { schedule: { every: '1d' } },
      },
      { queue: testQueue('redis', redis), limits: { concurrency: 4, perTarget: 2 } },
    );
    // Slow each rotation down so that the restart lands in the middle of the run.
    const slowEnv = { ...env, PGROTATE_FAILPOINT: 'pause-after-stage:400' };
    const workers = [startWorker(fx, path, slowEnv), startWorker(fx, path, slowEnv)];
    try {
      await waitForAccounts(fx, 1 + names.length);
      await makeDue(fx, names);
      await eventually(
        async () => (await auditCounts(fx, 'rotation.succeeded')).size >= 1 + 4,
        'a few rotations before the restart',
        30_000,
        100,
      );
      await restartRedisServer(redis, 500);
      const atRestart = (await auditCounts(fx, 'rotation.succeeded')).size - 1;
      // The restart really interrupted the run: some accounts were left for after it.
      expect(atRestart).toBeLessThan(names.length);
      await eventually(
        async () => {
          const n = await auditCounts(fx, 'rotation.succeeded');
          return names.every((name) => (n.get(name) ?? 0) >= 1);
        },
        'every account rotated after the restart',
        60_000,
        300,
      );
      await new Promise((r) => setTimeout(r, 2500));
    } finally {
      const exits = await Promise.all(workers.map((w) => w.stop()));
      expect(exits, workers.map((w) => w.output().slice(-1500)).join('\n----\n')).toEqual([
        { code: 0, signal: null },
        { code: 0, signal: null },
      ]);
    }
    const n = await auditCounts(fx, 'rotation.succeeded');
    for (const name of names) expect(n.get(name), name).toBe(1);
    const c = await stateClient(fx);
    const running = (await c.query("SELECT 1 FROM pgrotate.rotations WHERE status = 'running'")).rowCount;
    await c.end();
    expect(running).toBe(0);
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    for (const name of names.slice(0, 4)) await expectCurrentLogsIn(fx, provider, `pg/${name}`);
  });
});
