import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { expectCurrentLogsIn } from '../support/invariants.js';
import {
  auditCounts,
  eventually,
  makeDue,
  startWorker,
  stateClient,
  testQueue,
  waitForAccounts,
  writeJobsConfig,
  type Backend,
} from '../support/jobs-fixture.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';
import type { RedisServerInfo } from '../support/redis-server.js';

// Two `pgrotate worker` processes, 50 accounts due at the same moment, on both queue backends:
// every account is rotated exactly once, and the per-target limit holds across the processes
// (watched live in pg_stat_activity and checked afterwards from the audit trail).

const N = 50;
const PER_TARGET = 2;

describe.each(['postgres', 'redis'] as const)('two workers, %s backend', (backend: Backend) => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it(`${N} due accounts: each rotated exactly once, never more than ${PER_TARGET} at a time on the target`, async () => {
    const names = Array.from({ length: N }, (_, i) => `fleet-${i}`);
    const roles = await Promise.all(names.map((_, i) => fx.createRole(`fleet_${i}_${fx.suffix}`)));
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
      {
        queue: testQueue(backend, backend === 'redis' ? service<RedisServerInfo>('redis') : undefined),
        limits: { concurrency: 6, perTarget: PER_TARGET },
      },
    );
    const workers = [startWorker(fx, path, env), startWorker(fx, path, env)];
    const watcher = await fx.superClient();
    let maxBusy = 0;
    let watching = true;
    // Each rotation has at most one statement or verify login open on the target at a time.
    const watch = (async () => {
      while (watching) {
        const r = await watcher.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'pgrotate%' AND state <> 'idle' AND pid <> pg_backend_pid()",
          [fx.targetDb],
        );
        maxBusy = Math.max(maxBusy, Number(r.rows[0]?.n));
        await new Promise((res) => setTimeout(res, 10));
      }
    })();
    try {
      await waitForAccounts(fx, N);
      await makeDue(fx, names);
      await eventually(
        async () => (await auditCounts(fx, 'rotation.succeeded')).size === N,
        `all ${N} accounts rotated`,
        90_000,
        300,
      );
      // Let a few more ticks run: nothing is rotated a second time.
      await new Promise((r) => setTimeout(r, 2500));
    } finally {
      watching = false;
      await watch;
      await watcher.end();
      const exits = await Promise.all(workers.map((w) => w.stop()));
      expect(exits, workers.map((w) => w.output().slice(-1500)).join('\n----\n')).toEqual([
        { code: 0, signal: null },
        { code: 0, signal: null },
      ]);
    }
    const succeeded = await auditCounts(fx, 'rotation.succeeded');
    expect([...succeeded.values()].every((n) => n === 1)).toBe(true);
    expect(succeeded.size).toBe(N);
    expect(maxBusy).toBeGreaterThan(0);
    expect(maxBusy).toBeLessThanOrEqual(PER_TARGET);

    // From the audit trail: rotations whose [started, succeeded] intervals overlap.
    const c = await stateClient(fx);
    const ev = (
      await c.query<{ account: string; kind: string; at: Date }>(
        "SELECT account, kind, at FROM pgrotate.audit_events WHERE kind IN ('rotation.started', 'rotation.succeeded') ORDER BY at, id",
      )
    ).rows;
    await c.end();
    let open = 0;
    let maxOpen = 0;
    for (const e of ev) {
      open += e.kind === 'rotation.started' ? 1 : -1;
      maxOpen = Math.max(maxOpen, open);
    }
    expect(maxOpen).toBeLessThanOrEqual(PER_TARGET);
    // Both workers took part.
    expect(workers.every((w) => /rotation succeeded/.test(w.output()))).toBe(true);
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    for (const name of names.slice(0, 5)) await expectCurrentLogsIn(fx, provider, `pg/${name}`);
  });
});
