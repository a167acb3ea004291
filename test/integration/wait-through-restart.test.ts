import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { freePort } from '../support/free-port.js';
import { expectCurrentLogsIn } from '../support/invariants.js';
import {
  eventually,
  startWorker,
  stateClient,
  testQueue,
  waitForAccounts,
  writeJobsConfig,
  type WorkerProcess,
} from '../support/jobs-fixture.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { restartPgServer, startPgServer, stopPgServer, type PgServerInfo } from '../support/pg-server.js';
import {
  restartRedisServer,
  startRedisServer,
  stopRedisServer,
  type RedisServerInfo,
} from '../support/redis-server.js';

// Found by the chaos run (issue 19): `rotate --wait` on the PostgreSQL queue backend exited 1
// with `connect ECONNREFUSED` and no result when PostgreSQL restarted while it waited, although
// the workers went on and finished the rotation; on Redis without persistence, a restart lost the
// request's jobs and the wait (an offboarding's too) ran out its whole timeout. A wait rides out
// the restart, queues again what was lost, and reports what happened. The servers are this
// test's own, since they are restarted.

describe('rotate --wait through a PostgreSQL restart (PostgreSQL queue)', () => {
  let server: PgServerInfo;
  let fx: PgFixture;
  let worker: WorkerProcess | null = null;
  let redis: RedisServerInfo | null = null;
  beforeAll(async () => {
    server = startPgServer({
      label: 'waitrestart',
      binDir: process.env.PGROTATE_PG15_BIN ?? '/usr/lib/postgresql/15/bin',
      port: await freePort(),
    });
    fx = await createPgFixture(server);
  }, 120_000);
  afterAll(async () => {
    await worker?.stop();
    if (redis) await stopRedisServer(redis);
    await fx?.cleanup().catch(() => undefined);
    if (server) stopPgServer(server);
  });

  it('waits out the restart and prints the outcome', async () => {
    const role = await fx.createRole(`wr_${fx.suffix}`);
    const { path, env } = writeJobsConfig(
      fx,
      { accounts: [{ name: 'wr', target: 'main', role, provider: 'local', secret: 'pg/wr' }] },
      { queue: testQueue('postgres') },
    );
    // The rotation pauses after staging, so the restart lands while the CLI waits for it.
    worker = startWorker(fx, path, { ...env, PGROTATE_FAILPOINT: 'pause-after-stage:4000' });
    await waitForAccounts(fx, 1);
    const waiting = fx.cliProcess(['--config', path, 'rotate', 'wr', '--wait', '--json'], env);
    await eventually(
      async () => {
        const c = await stateClient(fx);
        try {
          return (
            ((await c.query("SELECT 1 FROM pgrotate.rotations WHERE account = 'wr'").catch(() => ({ rowCount: 0 })))
              .rowCount ?? 0) > 0
          );
        } finally {
          await c.end();
        }
      },
      'the rotation started',
      60_000,
    );
    // Down for 3 s, as on a loaded machine, so the CLI's polls meet a refused connection.
    restartPgServer(server, { downMs: 3000 });
    const r = await waiting;
    expect(r.code, `${r.stdout}\n${r.stderr}\n${worker.output().slice(-3000)}`).toBe(0);
    const result = (JSON.parse(r.stdout) as { results: Array<{ account: string; outcome: string }> }).results[0];
    expect(result).toMatchObject({ account: 'wr', outcome: 'succeeded' });
    await expectCurrentLogsIn(fx, new FileProvider({ name: 'local', path: fx.secretsFile }), 'pg/wr');
  }, 180_000);

  it('Redis restarted empty while a request waits: the lost jobs are queued again and the wait reports the outcome', async () => {
    await worker?.stop();
    worker = null;
    redis = await startRedisServer(await freePort());
    const role = await fx.createRole(`wq_${fx.suffix}`);
    const { path, env } = writeJobsConfig(
      fx,
      { accounts: [{ name: 'wq', target: 'main', role, provider: 'local', secret: 'pg/wq' }] },
      { queue: testQueue('redis', redis) },
    );
    // No worker yet: the job sits in Redis until Redis is restarted without it.
    const waiting = fx.cliProcess(['--config', path, 'rotate', 'wq', '--wait', '--json'], env);
    await new Promise((r) => setTimeout(r, 4000));
    await restartRedisServer(redis, 500);
    worker = startWorker(fx, path, env);
    const outcome = await Promise.race([waiting, new Promise<null>((r) => setTimeout(() => r(null), 90_000))]);
    expect(outcome, 'the wait did not end within 90 s').not.toBeNull();
    const r = outcome as Awaited<typeof waiting>;
    expect(r.code, `${r.stdout}\n${r.stderr}\n${worker.output().slice(-3000)}`).toBe(0);
    expect((JSON.parse(r.stdout) as { results: Array<{ account: string; outcome: string }> }).results[0]).toMatchObject(
      { account: 'wq', outcome: 'succeeded' },
    );
    await expectCurrentLogsIn(fx, new FileProvider({ name: 'local', path: fx.secretsFile }), 'pg/wq');
  }, 180_000);
});
