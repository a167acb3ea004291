import { PassThrough } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInline } from '../../jobs/inline-runner.js';
import { FileProvider } from '../../providers/file/file-provider.js';
import { createApp, type App } from '../../src/app/app-context.js';
import { loadConfigFile } from '../../src/app/load-config.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { startHttpServer, type RunningHttpServer } from '../../src/entry/http/http-server.js';
import { settleBusy } from '../../src/services/offboard/busy-accounts.js';
import { OffboardJoins } from '../../src/services/offboard/offboard-joins.js';
import { RotationDispatch } from '../../src/services/dispatch/rotation-dispatch.js';
import { expectCurrentLogsIn } from '../support/invariants.js';
import { eventually, stateClient, writeJobsConfig } from '../support/jobs-fixture.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// Issue 24, item 3, the parts the concurrent test cannot force: a request whose account another
// process is rotating, with that rotation started after the request, is satisfied by it (skipped,
// naming it, no second rotation); the wait is bounded; and the API's answers for a slow
// offboarding (202 with where to look) and for one that really failed (502, not 500).

const HR_TOKEN = `hr-${randomUUID()}`;

describe('offboarding waits for busy accounts, and answers what happened', () => {
  let fx: PgFixture;
  let app: App;
  let slowApp: App;
  let server: RunningHttpServer;
  let slowServer: RunningHttpServer;
  let config: { path: string; env: NodeJS.ProcessEnv };
  let roles: string[];
  const provider = () => new FileProvider({ name: 'local', path: fx.secretsFile });

  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    roles = await Promise.all(['bw_a', 'bw_b', 'bw_c', 'bw_d'].map((n) => fx.createRole(`${n}_${fx.suffix}`)));
    const su = await fx.superClient();
    await su.query(`GRANT pg_signal_backend TO ${fx.rotator}`);
    await su.end();
    const account = (name: string, role: string, exposedTo: string[]) => ({
      name,
      target: 'main',
      role,
      provider: 'local',
      secret: `pg/${name}`,
      exposedTo,
      schedule: 'manual',
    });
    config = writeJobsConfig(
      fx,
      {
        accounts: [
          account('bw-a', roles[0] as string, ['gina']),
          account('bw-b', roles[1] as string, ['hank']),
          account('bw-c', roles[2] as string, ['ivan']),
          account('bw-d', roles[3] as string, ['kate']),
          // A role that does not exist: its rotation fails for real.
          account('bw-missing', `bw_missing_${fx.suffix}`, ['jack']),
        ],
        extra: { http: { tokens: [{ name: 'hr-system', token: 'env:TEST_HR_TOKEN', actions: ['offboard'] }] } },
      },
      {},
    );
    config.env = { ...config.env, TEST_HR_TOKEN: HR_TOKEN };
    const open = async (env: NodeJS.ProcessEnv) => {
      const redactor = new Redactor();
      return createApp(loadConfigFile(config.path, env), {
        redactor,
        log: createLogger(redactor, { destination: new PassThrough() }),
        env,
      });
    };
    app = await open(config.env);
    // This process's own rotations pause 1.5 s after staging (the engine reads the app's env).
    slowApp = await open({ ...config.env, PGROTATE_FAILPOINT: 'pause-after-stage:1500' });
    server = await startHttpServer({ app, listen: '127.0.0.1:0' });
    slowServer = await startHttpServer({ app: slowApp, listen: '127.0.0.1:0', offboardResponseWaitMs: 300 });
  });
  afterAll(async () => {
    await server?.close();
    await slowServer?.close();
    await app?.close();
    await slowApp?.close();
    await fx?.cleanup();
  });

  async function rotationsOf(account: string) {
    const c = await stateClient(fx);
    try {
      return (
        await c.query<{ id: string; status: string }>(
          'SELECT id, status FROM pgrotate.rotations WHERE account = $1 ORDER BY started_at',
          [account],
        )
      ).rows;
    } finally {
      await c.end();
    }
  }

  /** `pgrotate rotate ACCOUNT` in another process, pausing `ms` after staging; resolves once its rotation exists. */
  async function slowRotateElsewhere(account: string, ms: number) {
    const before = (await rotationsOf(account)).length;
    const done = fx.cliProcess(['--config', config.path, 'rotate', account], {
      ...config.env,
      PGROTATE_FAILPOINT: `pause-after-stage:${ms}`,
    });
    await eventually(
      async () => (await rotationsOf(account)).length > before,
      `a rotation of ${account} started`,
      20_000,
      50,
    );
    const row = (await rotationsOf(account)).at(-1);
    return { done, rotationId: row?.id as string };
  }

  it('busy with a rotation that started after the request: waits for it and reports it as the one that satisfied the request', async () => {
    const req = {
      kind: 'offboard' as const,
      reason: 'offboarding gina',
      requestedBy: 'test',
      terminateSessions: false,
      requestedAt: await app.state.now(),
    };
    const other = await slowRotateElsewhere('bw-a', 1500);
    const first = await runInline(app, ['bw-a'], req);
    expect(first[0]?.outcome).toBe('busy');
    const t0 = Date.now();
    const settled = await settleBusy(app, first, Date.now() + 30_000, (accounts) => runInline(app, accounts, req));
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await other.done).code).toBe(0);
    expect(settled[0]).toMatchObject({
      account: 'bw-a',
      outcome: 'skipped',
      rotationId: other.rotationId,
      error: null,
    });
    expect(settled[0]?.detail).toMatch(/started after this request already succeeded/);
    // One rotation, the other process's.
    expect((await rotationsOf('bw-a')).map((r) => [r.id, r.status])).toEqual([[other.rotationId, 'succeeded']]);
    await expectCurrentLogsIn(fx, provider(), 'pg/bw-a');
  });

  it('the wait is bounded: an account still held at the deadline stays busy', async () => {
    const req = {
      kind: 'offboard' as const,
      reason: 'offboarding hank',
      requestedBy: 'test',
      terminateSessions: false,
      requestedAt: await app.state.now(),
    };
    const other = await slowRotateElsewhere('bw-b', 3000);
    const first = await runInline(app, ['bw-b'], req);
    const t0 = Date.now();
    const settled = await settleBusy(app, first, Date.now() + 500, (accounts) => runInline(app, accounts, req));
    const waited = Date.now() - t0;
    expect(settled[0]?.outcome).toBe('busy');
    expect(waited).toBeGreaterThanOrEqual(450);
    expect(waited).toBeLessThan(2000);
    expect((await other.done).code).toBe(0);
  });

  it('in one process: a request asking no more joins the running offboarding; one that also ends sessions runs its own rotation after it', async () => {
    const joins = new OffboardJoins();
    const rotations = new RotationDispatch(slowApp);
    const req = (actor: string, terminateSessions: boolean) => ({
      principal: 'kate',
      terminateSessions,
      actor,
      timeoutMs: 30_000,
    });
    try {
      const lead = await joins.start(slowApp, rotations, req('test:lead', false));
      const same = await joins.start(slowApp, rotations, req('test:same', false));
      // Once the leader's rotation holds the account (else this one may take the fence first, and
      // then satisfies the leader: also right, but not what this test is about).
      await eventually(async () => (await rotationsOf('bw-d')).length === 1, 'the leader rotating', 20_000, 20);
      const more = await joins.start(slowApp, rotations, req('test:more', true));
      expect([lead.joined, same.joined, more.joined]).toEqual([false, true, false]);
      const [a, b, c] = await Promise.all([lead.done, same.done, more.done]);
      // The joiner got the leader's very report.
      expect(b).toBe(a);
      expect(a?.results[0]).toMatchObject({ account: 'bw-d', outcome: 'succeeded', sessionsEnded: null });
      // The leader's rotation ended no sessions, so it could not satisfy the request that asked
      // for that: that one waited for the fence and rotated again, ending sessions.
      expect(c?.results[0]).toMatchObject({ account: 'bw-d', outcome: 'succeeded', sessionsEnded: 0 });
      expect(c?.results[0]?.rotationId).not.toBe(a?.results[0]?.rotationId);
      expect((await rotationsOf('bw-d')).map((r) => r.id)).toEqual([
        a?.results[0]?.rotationId,
        c?.results[0]?.rotationId,
      ]);
      const c2 = await stateClient(fx);
      const completed = (
        await c2.query<{ actor: string; detail: { joinedBy: string[] } }>(
          "SELECT actor, detail FROM pgrotate.audit_events WHERE kind = 'offboard.completed' AND detail->>'principal' = 'kate' ORDER BY id",
        )
      ).rows;
      await c2.end();
      expect(completed.map((r) => [r.actor, r.detail.joinedBy])).toEqual([
        ['test:lead', ['test:same']],
        ['test:more', []],
      ]);
    } finally {
      await rotations.close();
    }
  });

  const post = async (srv: RunningHttpServer, principal: string) => {
    const r = await fetch(`${srv.url}/v1/offboard`, {
      method: 'POST',
      headers: { authorization: `Bearer ${HR_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ principal }),
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  it('POST /v1/offboard still rotating after the response wait: 202 with the accounts and where to look; the outcome is audited when done', async () => {
    const res = await post(slowServer, 'ivan');
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toEqual({
      principal: 'ivan',
      accounts: ['bw-c'],
      running: true,
      joined: false,
      poll: '/v1/accounts',
    });
    await eventually(async () => {
      const c = await stateClient(fx);
      try {
        const r = await c.query(
          "SELECT 1 FROM pgrotate.audit_events WHERE kind = 'offboard.completed' AND detail->>'principal' = 'ivan' AND detail->'rotated' = '[\"bw-c\"]'::jsonb",
        );
        return r.rowCount === 1;
      } finally {
        await c.end();
      }
    }, 'the offboarding of ivan recorded as completed');
    expect((await rotationsOf('bw-c')).map((r) => r.status)).toEqual(['succeeded']);
    await expectCurrentLogsIn(fx, provider(), 'pg/bw-c');
  });

  it('POST /v1/offboard whose rotation really failed: 502 with the reason, not 500', async () => {
    const res = await post(server, 'jack');
    expect(res.status, JSON.stringify(res.body)).toBe(502);
    expect(res.body).toMatchObject({ principal: 'jack', rotated: [], failed: ['bw-missing'], joined: false });
    const [result] = res.body.results as Array<{ outcome: string; error: { message: string } }>;
    expect(result?.outcome).toBe('failed');
    expect(result?.error.message).toMatch(/bw-missing.*does not exist on target main/);
  });
});
