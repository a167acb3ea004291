import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { expectCurrentLogsIn, expectNoLostCredential, passwordsIn } from '../support/invariants.js';
import {
  eventually,
  startWorker,
  stateClient,
  testQueue,
  writeJobsConfig,
  type Backend,
} from '../support/jobs-fixture.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';
import type { RedisServerInfo } from '../support/redis-server.js';

// Issue 24, item 5: `queue.shutdownTimeout` bounds the worker's exit. With rotations in flight
// that take far longer than the timeout (paused right after ALTER ROLE, the worst place for I1),
// SIGTERM must end the process within the timeout plus a small close budget, and the rotation
// cut short must be resumable: a later worker finishes it and no password is lost.

describe.each(['postgres', 'redis'] as const)(
  'worker exit honours queue.shutdownTimeout (%s queue)',
  (backend: Backend) => {
    let fx: PgFixture;
    beforeAll(async () => {
      fx = await createPgFixture(pgServer('pg15'));
    });
    afterAll(async () => {
      await fx?.cleanup();
    });

    async function rotationRows(accounts: string[]) {
      const c = await stateClient(fx);
      try {
        return (
          await c.query<{ id: string; account: string; status: string; step: string }>(
            'SELECT id, account, status, step FROM pgrotate.rotations WHERE account = ANY($1) ORDER BY started_at',
            [accounts],
          )
        ).rows;
      } catch {
        return [];
      } finally {
        await c.end();
      }
    }

    it('SIGTERM with slow rotations in flight exits within shutdownTimeout + 2 s; a later worker completes them keeping I1', async () => {
      const names = ['sd-a', 'sd-b'];
      const roles = await Promise.all(names.map((n) => fx.createRole(`${n.replace('-', '_')}_${fx.suffix}`)));
      const accounts = names.map((name, i) => ({
        name,
        target: 'main',
        role: roles[i] as string,
        provider: 'local',
        secret: `pg/${name}`,
        schedule: 'manual',
      }));
      const { path, env } = writeJobsConfig(
        fx,
        { accounts },
        {
          queue: testQueue(backend, backend === 'redis' ? service<RedisServerInfo>('redis') : undefined, {
            shutdownTimeout: '1s',
          }),
        },
      );
      const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
      // Each rotation sleeps 20 s right after ALTER ROLE: PostgreSQL has the new password, the
      // provider holds it only as pending.
      const slow = startWorker(fx, path, { ...env, PGROTATE_FAILPOINT: 'pause-after-apply:20000' });
      let exitMs: number;
      try {
        const queued = await fx.cli(['--config', path, 'rotate', ...names], env);
        expect(queued.code, queued.stderr).toBe(0);
        // Applied: the pending value (the durable step is still `staged`) is what logs in now.
        await eventually(async () => {
          const rows = await rotationRows(names);
          if (rows.length !== 2 || !rows.every((r) => r.status === 'running' && r.step === 'staged')) return false;
          for (const [i, name] of names.entries()) {
            const pending = await provider.getPending(`pg/${name}`);
            if (!pending || !(await fx.canLogin(roles[i] as string, pending.password))) return false;
          }
          return true;
        }, 'both rotations applied and paused');
        const t0 = performance.now();
        const exit = await slow.stop();
        exitMs = performance.now() - t0;
        expect(exit, slow.output().slice(-3000)).toEqual({ code: 0, signal: null });
      } finally {
        await slow.stop();
      }
      console.log(`${backend} queue: worker exit after SIGTERM ${Math.round(exitMs)} ms (shutdownTimeout 1000 ms)`);
      expect(exitMs, slow.output().slice(-3000)).toBeLessThanOrEqual(1000 + 2000);
      expect(slow.output()).toMatch(/shutdown timeout/);

      // Cut short, not lost: the rotations are still running at their step, and every password
      // PostgreSQL accepts is in the provider.
      const cut = await rotationRows(names);
      expect(cut.map((r) => [r.status, r.step])).toEqual([
        ['running', 'staged'],
        ['running', 'staged'],
      ]);
      for (const [i, name] of names.entries()) {
        const seen = await passwordsIn(provider, `pg/${name}`);
        expect(seen.length).toBeGreaterThan(0);
        await expectNoLostCredential(fx, provider, `pg/${name}`, [roles[i] as string], seen);
      }

      // A later worker resumes them (the jobs' locks lapse and they are redelivered) and finishes.
      const later = startWorker(fx, path, env);
      try {
        await eventually(
          async () => (await rotationRows(names)).every((r) => r.status === 'succeeded'),
          'the cut-short rotations finished by the next worker',
          40_000,
        );
      } finally {
        const exit = await later.stop();
        expect(exit, later.output().slice(-2000)).toEqual({ code: 0, signal: null });
      }
      const done = await rotationRows(names);
      expect(done.map((r) => r.id)).toEqual(cut.map((r) => r.id));
      for (const [i, name] of names.entries()) {
        const seen = await passwordsIn(provider, `pg/${name}`);
        await expectNoLostCredential(fx, provider, `pg/${name}`, [roles[i] as string], seen);
        await expectCurrentLogsIn(fx, provider, `pg/${name}`);
        // I4: the workers' logs (the cut-short one's warnings included) carry no password.
        for (const pw of seen) {
          expect(slow.output()).not.toContain(pw);
          expect(later.output()).not.toContain(pw);
        }
      }
    }, 90_000);
  },
);
