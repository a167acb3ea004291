import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/core/net/free-port.js';
import {
  eventually,
  startWorker,
  stateClient,
  testQueue,
  waitForAccounts,
  writeJobsConfig,
} from '../support/jobs-fixture.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';

// Issue 13, defect 2: an error that retrying cannot fix (a missing pg_signal_backend for
// --terminate-sessions, a role that does not exist) ends the job on its first attempt, marks the
// account failed with the reason, alerts, and `offboard` / `rotate --wait` report it within
// seconds. A transient fault (a target that refuses connections) keeps its retries.
//
// The backoff is long on purpose (retries after 4-8 s, then 8-16 s): a worker that retried the
// permanent errors could not report them within 10 s.

type Result = { account: string; outcome: string; error: { type: string; message: string; permanent: boolean } | null };

describe('permanent errors fail fast, transient ones are retried (worker, PostgreSQL queue)', () => {
  let fx: PgFixture;
  let rx: Awaited<ReturnType<typeof startWebhookReceiver>>;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    rx = await startWebhookReceiver();
  });
  afterAll(async () => {
    await rx?.close();
    await fx?.cleanup();
  });

  it(
    'offboard --terminate-sessions without pg_signal_backend and rotate --wait of a missing role: reported in < 10 s after one attempt',
    { timeout: 120_000 },
    async () => {
      const owner = `pe_own_${fx.suffix}`;
      const rc = await fx.rotatorClient('postgres');
      await rc.query(`CREATE ROLE ${owner} NOLOGIN`);
      await rc.end();
      const direct = await fx.createRole(`pe_direct_${fx.suffix}`);
      const altA = await fx.createRole(`pe_alt_a_${fx.suffix}`, { inRole: owner });
      const altB = await fx.createRole(`pe_alt_b_${fx.suffix}`, { inRole: owner });
      const downPort = await freePort();
      const main = {
        host: fx.server.host,
        port: fx.server.port,
        database: fx.targetDb,
        sslmode: 'disable',
        admin: { username: fx.rotator, password: 'env:TEST_ROTATOR_PASSWORD' },
      };
      const { path, env } = writeJobsConfig(
        fx,
        {
          accounts: [
            // On a schedule, as in the report: a scheduled rotation succeeds just before the offboarding.
            {
              name: 'pe-direct',
              target: 'main',
              role: direct,
              provider: 'local',
              secret: 'pg/pe-direct',
              exposedTo: ['bob'],
              schedule: { every: '30s' },
            },
            {
              name: 'pe-alt',
              target: 'main',
              strategy: 'alternating',
              roles: [altA, altB],
              gracePeriod: '1h',
              provider: 'local',
              secret: 'pg/pe-alt',
              exposedTo: ['bob'],
              schedule: 'manual',
            },
            {
              name: 'pe-ghost',
              target: 'main',
              role: `pe_missing_${fx.suffix}`,
              provider: 'local',
              secret: 'pg/pe-ghost',
              schedule: 'manual',
            },
            {
              name: 'pe-down',
              target: 'down',
              role: direct,
              provider: 'local',
              secret: 'pg/pe-down',
              schedule: 'manual',
            },
          ],
        },
        {
          targets: { main, down: { ...main, port: downPort, connectTimeout: '2s' } },
          queue: testQueue('postgres', undefined, { attempts: 3, backoff: '8s', backoffCap: '16s', cooldown: '1h' }),
          alerts: { webhooks: [{ url: rx.url, format: 'json', events: ['rotation.failed'] }] },
        },
      );
      const worker = startWorker(fx, path, env);
      const c = await stateClient(fx);
      try {
        await waitForAccounts(fx, 4);
        const refusals = async (account: string) =>
          Number(
            (
              await c.query<{ n: string }>(
                "SELECT count(*) AS n FROM pgrotate.audit_events WHERE account = $1 AND kind = 'rotation.refused'",
                [account],
              )
            ).rows[0]?.n,
          );

        // The first scheduled rotation (due within the 3 s spread) ends no sessions.
        await eventually(
          async () =>
            Number(
              (
                await c.query<{ n: string }>(
                  "SELECT count(*) AS n FROM pgrotate.rotations WHERE account = 'pe-direct' AND status = 'succeeded'",
                )
              ).rows[0]?.n,
            ) > 0,
          'the first scheduled rotation of pe-direct',
          30_000,
        );
        // The admin login (the fixture's rotator) was never granted pg_signal_backend.
        let t0 = Date.now();
        const off = await fx.cli(['--config', path, 'offboard', 'bob', '--terminate-sessions', '--json'], env);
        const offMs = Date.now() - t0;
        expect(off.code, off.stdout + off.stderr).toBe(1);
        console.log(`offboard --terminate-sessions without pg_signal_backend reported in ${offMs} ms`);
        expect(offMs, 'offboard reported within 10 s').toBeLessThan(10_000);
        const offOut = JSON.parse(off.stdout) as { rotated: string[]; failed: string[]; results: Result[] };
        expect(offOut.rotated).toEqual([]);
        expect(offOut.failed.sort()).toEqual(['pe-alt', 'pe-direct']);
        for (const r of offOut.results) {
          expect(r.outcome).toBe('failed');
          expect(r.error?.message).toMatch(new RegExp(`GRANT pg_signal_backend TO "?${fx.rotator}"?`));
          expect(r.error?.permanent).toBe(true);
        }

        t0 = Date.now();
        const ghost = await fx.cli(['--config', path, 'rotate', 'pe-ghost', '--wait', '--json'], env);
        expect(ghost.code, ghost.stdout + ghost.stderr).toBe(1);
        console.log(`rotate --wait of a missing role reported in ${Date.now() - t0} ms`);
        expect(Date.now() - t0, 'rotate --wait reported within 10 s').toBeLessThan(10_000);
        const ghostOut = (JSON.parse(ghost.stdout) as { results: Result[] }).results[0];
        expect(ghostOut?.error?.message).toMatch(/pe-ghost.*does not exist on target main/);
        expect(ghostOut?.error?.permanent).toBe(true);

        // The account is marked failed with the reason, the give-up is audited as permanent, and
        // a rotation.failed alert went out.
        const acc = (
          await c.query<{ last_status: string; last_error: string }>(
            "SELECT last_status, last_error FROM pgrotate.accounts WHERE name = 'pe-ghost'",
          )
        ).rows[0];
        expect(acc).toMatchObject({ last_status: 'failed', last_error: expect.stringMatching(/does not exist/) });
        const gaveUp = (
          await c.query<{ account: string; detail: { permanent: boolean; attempts: number } }>(
            "SELECT account, detail FROM pgrotate.audit_events WHERE kind = 'rotation.gave-up' ORDER BY id",
          )
        ).rows;
        expect(gaveUp.map((g) => g.account).sort()).toEqual(['pe-alt', 'pe-direct', 'pe-ghost']);
        for (const g of gaveUp) expect(g.detail).toMatchObject({ permanent: true, attempts: 1 });
        await eventually(
          async () => rx.received.some((r) => r.body.includes('"account":"pe-ghost"')),
          'the rotation.failed alert of pe-ghost',
          10_000,
        );
        const alert = JSON.parse(rx.received.find((r) => r.body.includes('"account":"pe-ghost"'))?.body ?? '{}') as {
          detail?: { permanent?: boolean };
        };
        expect(alert.detail?.permanent).toBe(true);

        // A scheduled rotation that ended no sessions never stands in for the offboarding.
        const scheduledOk = Number(
          (
            await c.query<{ n: string }>(
              "SELECT count(*) AS n FROM pgrotate.rotations WHERE account = 'pe-direct' AND status = 'succeeded' AND requested_by = 'scheduler'",
            )
          ).rows[0]?.n,
        );
        expect(scheduledOk).toBeGreaterThan(0);

        // A transient fault keeps its retries: three attempts, then failed (not permanent).
        t0 = Date.now();
        const down = await fx.cli(['--config', path, 'rotate', 'pe-down', '--wait', '--json'], env);
        expect(down.code).toBe(1);
        const downOut = (JSON.parse(down.stdout) as { results: Result[] }).results[0];
        expect(downOut?.error?.permanent).toBe(false);
        expect(await refusals('pe-down')).toBe(3);
        expect(Date.now() - t0).toBeGreaterThan(10_000);

        // By now a retry of the permanent failures would have come (4-8 s after the first try).
        expect(await refusals('pe-ghost')).toBe(1);
        const offboardAttempts = Number(
          (
            await c.query<{ n: string }>(
              "SELECT count(*) AS n FROM pgrotate.audit_events WHERE kind = 'rotation.refused' AND account IN ('pe-direct', 'pe-alt') AND actor <> 'scheduler'",
            )
          ).rows[0]?.n,
        );
        expect(offboardAttempts).toBe(2);
      } finally {
        await c.end();
        expect(await worker.stop(), worker.output().slice(-2000)).toEqual({ code: 0, signal: null });
      }
    },
  );
});
