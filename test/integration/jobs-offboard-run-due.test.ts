import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { FileProvider } from '../../providers/file/file-provider.js';
import { expectCurrentLogsIn } from '../support/invariants.js';
import { auditCounts, makeDue, startWorker, stateClient, testQueue, writeJobsConfig } from '../support/jobs-fixture.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// `pgrotate offboard` (inline and through the workers, with and without ending sessions) and
// `pgrotate run-due` (the CronJob mode) with its exit codes.

describe('offboarding and run-due', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  async function openSession(role: string, password: string): Promise<pg.Client> {
    const c = new pg.Client({
      host: fx.server.host,
      port: fx.server.port,
      user: role,
      password,
      database: fx.targetDb,
      application_name: 'app',
    });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  }
  const alive = async (c: pg.Client) =>
    c.query('SELECT 1').then(
      () => true,
      () => false,
    );

  it('offboard rotates what the principal could see (directly or via a group); sessions end only with --terminate-sessions', async () => {
    const owner = `own_${fx.suffix}`;
    const rc = await fx.rotatorClient('postgres');
    await rc.query(`CREATE ROLE ${owner} NOLOGIN`);
    await rc.end();
    const direct = await fx.createRole(`direct_${fx.suffix}`);
    const viaGroup = await fx.createRole(`group_${fx.suffix}`);
    const other = await fx.createRole(`other_${fx.suffix}`);
    const altA = await fx.createRole(`alt_a_${fx.suffix}`, { inRole: owner });
    const altB = await fx.createRole(`alt_b_${fx.suffix}`, { inRole: owner });
    const accounts = [
      { name: 'direct', target: 'main', role: direct, provider: 'local', secret: 'pg/direct', exposedTo: ['alice'] },
      {
        name: 'via-group',
        target: 'main',
        role: viaGroup,
        provider: 'local',
        secret: 'pg/via-group',
        exposedTo: ['contractors'],
      },
      { name: 'other', target: 'main', role: other, provider: 'local', secret: 'pg/other', exposedTo: ['bob'] },
      {
        name: 'alt',
        target: 'main',
        strategy: 'alternating',
        roles: [altA, altB],
        gracePeriod: '2h',
        provider: 'local',
        secret: 'pg/alt',
        exposedTo: ['alice'],
      },
    ];
    const groups = { contractors: ['alice', 'carol'] };
    // Ending other roles' sessions takes pg_signal_backend (documented in docs/security.md).
    const su = await fx.superClient();
    await su.query(`GRANT pg_signal_backend TO ${fx.rotator}`);
    await su.end();
    const inline = writeJobsConfig(fx, { accounts }, { groups });
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    // Give every account a managed credential first.
    expect((await fx.cli(['--config', inline.path, 'rotate', '--all'], inline.env)).code).toBe(0);
    const otherBefore = (await provider.getCurrent('pg/other'))?.password;

    // Inline (no queue), without ending sessions: the open session stays.
    const v0 = await provider.getCurrent('pg/direct');
    const session = await openSession(direct, v0?.password as string);
    const first = await fx.cli(['--config', inline.path, 'offboard', 'alice', '--json'], inline.env);
    expect(first.code, first.stderr).toBe(0);
    const out1 = JSON.parse(first.stdout) as { rotated: string[]; failed: string[]; sessionsEnded: number | null };
    expect(out1.rotated.sort()).toEqual(['alt', 'direct', 'via-group']);
    expect(out1.failed).toEqual([]);
    expect(out1.sessionsEnded).toBeNull();
    expect(await alive(session)).toBe(true);
    expect((await provider.getCurrent('pg/direct'))?.password).not.toBe(v0?.password);
    expect((await provider.getCurrent('pg/other'))?.password).toBe(otherBefore);

    // Through the workers, with --terminate-sessions: the session is ended after the new
    // password is live, and the alternating pair's old role expires at once.
    const queued = writeJobsConfig(fx, { accounts }, { groups, queue: testQueue('postgres') });
    const worker = startWorker(fx, queued.path, queued.env);
    try {
      const second = await fx.cli(['--config', queued.path, 'offboard', 'alice', '--terminate-sessions'], queued.env);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout).toMatch(/offboard alice: 3 rotated, 0 failed, [1-9]\d* sessions ended/);
    } finally {
      expect(await worker.stop(), worker.output().slice(-1500)).toEqual({ code: 0, signal: null });
    }
    expect(await alive(session)).toBe(false);
    await session.end().catch(() => undefined);
    for (const s of ['pg/direct', 'pg/via-group', 'pg/alt']) await expectCurrentLogsIn(fx, provider, s);
    const previousAlt = await provider.getPrevious('pg/alt');
    expect(await fx.canLogin(previousAlt?.username as string, previousAlt?.password as string)).toBe(false);
    expect((await provider.getCurrent('pg/other'))?.password).toBe(otherBefore);

    const c = await stateClient(fx);
    const ev = (
      await c.query<{ kind: string; detail: { principal: string; rotated?: string[] } }>(
        "SELECT kind, detail FROM pgrotate.audit_events WHERE kind LIKE 'offboard.%' ORDER BY id",
      )
    ).rows;
    const offboardJobs = (
      await c.query<{ n: string }>("SELECT count(*) AS n FROM pgrotate.rotations WHERE reason = 'offboarding alice'")
    ).rows[0]?.n;
    await c.end();
    expect(ev.map((e) => e.kind)).toEqual([
      'offboard.requested',
      'offboard.completed',
      'offboard.requested',
      'offboard.completed',
    ]);
    expect(ev[3]?.detail.rotated?.sort()).toEqual(['alt', 'direct', 'via-group']);
    expect(Number(offboardJobs)).toBe(6);
  });

  it('run-due rotates what is due inline and exits 1 if any rotation failed', async () => {
    const good = await Promise.all(
      ['due-a', 'due-b', 'due-c', 'due-manual'].map((n) => fx.createRole(`${n.replace('-', '_')}_${fx.suffix}`)),
    );
    const accounts = [
      ...['due-a', 'due-b', 'due-c'].map((name, i) => ({
        name,
        target: 'main',
        role: good[i],
        provider: 'local',
        secret: `pg/${name}`,
      })),
      {
        name: 'due-missing',
        target: 'main',
        role: `missing_${fx.suffix}`,
        provider: 'local',
        secret: 'pg/due-missing',
      },
      {
        name: 'due-manual',
        target: 'main',
        // Its own role: two accounts on one role are refused at load.
        role: good[3],
        provider: 'local',
        secret: 'pg/due-manual',
        schedule: 'manual',
      },
    ];
    const { path, env } = writeJobsConfig(
      fx,
      { accounts, defaults: { schedule: { every: '1d' } } },
      { limits: { concurrency: 2, perTarget: 1 } },
    );
    const first = await fx.cli(['--config', path, 'run-due'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/run-due: 0 due/);

    await makeDue(fx, ['due-a', 'due-b', 'due-c', 'due-missing']);
    const second = await fx.cli(['--config', path, 'run-due', '--json'], env);
    expect(second.code).toBe(1);
    const out = JSON.parse(second.stdout) as {
      summary: Record<string, number>;
      results: Array<{ account: string; outcome: string; error: { message: string } | null }>;
    };
    expect(out.summary).toMatchObject({ due: 4, succeeded: 3, failed: 1 });
    expect(out.results.find((r) => r.account === 'due-missing')?.error?.message).toMatch(
      /due-missing.*does not exist on target main/,
    );
    const n = await auditCounts(fx, 'rotation.succeeded');
    for (const a of ['due-a', 'due-b', 'due-c']) expect(n.get(a)).toBe(1);
    expect(n.get('due-manual')).toBeUndefined();

    // Nothing due but the failed account (still due, retried each run): fix it and all is well.
    await fx.createRole(`missing_${fx.suffix}`);
    const third = await fx.cli(['--config', path, 'run-due'], env);
    expect(third.code, third.stdout + third.stderr).toBe(0);
    expect(third.stdout).toMatch(/run-due: 1 due, 1 succeeded, 0 failed/);
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    await expectCurrentLogsIn(fx, provider, 'pg/due-missing');
  });
});
