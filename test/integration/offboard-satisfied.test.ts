import { PassThrough } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInline } from '../../jobs/inline-runner.js';
import { FileProvider } from '../../providers/file/file-provider.js';
import { createApp, type App } from '../../src/app/app-context.js';
import { loadConfigFile } from '../../src/app/load-config.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { expectCurrentLogsIn } from '../support/invariants.js';
import { writeJobsConfig } from '../support/jobs-fixture.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// Issue 13, defect 4: an offboarding request is satisfied only by a rotation that did all it
// asked for. A rotation that started after the request but ended no sessions (a scheduled one)
// does not count: the request runs, or fails and says why. One that did everything does count.

describe('offboarding is satisfied only by a rotation that did what it asked', () => {
  let fx: PgFixture;
  let app: App;
  let provider: FileProvider;
  let config: { path: string; env: NodeJS.ProcessEnv };
  const sessions: pg.Client[] = [];
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    const owner = `os_own_${fx.suffix}`;
    const rc = await fx.rotatorClient('postgres');
    await rc.query(`CREATE ROLE ${owner} NOLOGIN`);
    await rc.end();
    const direct = await fx.createRole(`os_direct_${fx.suffix}`);
    const altA = await fx.createRole(`os_alt_a_${fx.suffix}`, { inRole: owner });
    const altB = await fx.createRole(`os_alt_b_${fx.suffix}`, { inRole: owner });
    config = writeJobsConfig(
      fx,
      {
        accounts: [
          {
            name: 'os-direct',
            target: 'main',
            role: direct,
            provider: 'local',
            secret: 'pg/os-direct',
            exposedTo: ['dave'],
          },
          {
            name: 'os-alt',
            target: 'main',
            strategy: 'alternating',
            roles: [altA, altB],
            gracePeriod: '2h',
            provider: 'local',
            secret: 'pg/os-alt',
            exposedTo: ['dave'],
          },
        ],
      },
      {},
    );
    const redactor = new Redactor();
    app = await createApp(loadConfigFile(config.path, config.env), {
      redactor,
      log: createLogger(redactor, { destination: new PassThrough() }),
      env: config.env,
    });
    provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    // Managed credentials for both accounts first (the alternating pair needs a previous role).
    for (let i = 0; i < 2; i++)
      for (const a of app.config.accounts) expect((await app.engine.rotate(a)).outcome).toBe('succeeded');
  });
  afterAll(async () => {
    for (const s of sessions) await s.end().catch(() => undefined);
    await app?.close();
    await fx?.cleanup();
  });

  async function openSession(secret: string): Promise<pg.Client> {
    const v = await provider.getCurrent(secret);
    const c = new pg.Client({
      host: fx.server.host,
      port: fx.server.port,
      user: v?.username,
      password: v?.password,
      database: fx.targetDb,
    });
    c.on('error', () => undefined);
    await c.connect();
    sessions.push(c);
    return c;
  }
  const alive = (c: pg.Client) =>
    c.query('SELECT 1').then(
      () => true,
      () => false,
    );
  const offboard = (requestedAt: number) =>
    runInline(app, ['os-direct', 'os-alt'], {
      kind: 'offboard',
      reason: 'offboarding dave',
      requestedBy: 'test',
      terminateSessions: true,
      requestedAt,
    });
  /** A rotation like a scheduled one: after the request, ending no sessions, old alt role on its grace period. */
  const scheduledRotations = async () => {
    for (const a of app.config.accounts)
      expect((await app.engine.rotate(a, { requestedBy: 'scheduler', reason: 'scheduled' })).outcome).toBe('succeeded');
  };

  it('without pg_signal_backend: a later scheduled rotation does not stand in; the request fails naming the GRANT', async () => {
    const requestedAt = await app.state.now();
    await scheduledRotations();
    const results = await offboard(requestedAt);
    for (const r of results) {
      expect(r.outcome, JSON.stringify(r)).toBe('failed');
      expect(r.error?.message).toMatch(new RegExp(`GRANT pg_signal_backend TO "?${fx.rotator}"?`));
      expect(r.error?.permanent).toBe(true);
    }
  });

  it('with pg_signal_backend: the request rotates again and ends the sessions; a later request it covers is skipped', async () => {
    const su = await fx.superClient();
    await su.query(`GRANT pg_signal_backend TO ${fx.rotator}`);
    await su.end();
    const requestedAt = await app.state.now();
    await scheduledRotations();
    const session = await openSession('pg/os-direct');
    const results = await offboard(requestedAt);
    const byAccount = new Map(results.map((r) => [r.account, r]));
    expect(byAccount.get('os-direct')).toMatchObject({ outcome: 'succeeded', error: null });
    expect(byAccount.get('os-direct')?.sessionsEnded).toBeGreaterThanOrEqual(1);
    expect(byAccount.get('os-alt')).toMatchObject({ outcome: 'succeeded', error: null });
    expect(await alive(session)).toBe(false);
    // The previous role of the pair expired at once, not after the two-hour grace period.
    const previous = await provider.getPrevious('pg/os-alt');
    expect(await fx.canLogin(previous?.username as string, previous?.password as string)).toBe(false);
    for (const s of ['pg/os-direct', 'pg/os-alt']) await expectCurrentLogsIn(fx, provider, s);

    // The same request delivered again (at-least-once queue): the rotation above did it all.
    const again = await offboard(requestedAt);
    for (const r of again) {
      expect(r.outcome).toBe('skipped');
      expect(r.rotationId).toBe(byAccount.get(r.account)?.rotationId);
      expect(r.sessionsEnded).toBe(byAccount.get(r.account)?.sessionsEnded);
    }
  });

  it('a rotation left unfinished from before the request is finished, and then the request still gets its own rotation', async () => {
    // A process crashed right after ALTER ROLE: its rotation (started before the request, so its
    // password may be one the departing person saw) is resumed first.
    const crashed = await fx.cliProcess(['--config', config.path, 'rotate', 'os-direct'], {
      ...config.env,
      PGROTATE_FAILPOINT: 'after-apply',
    });
    expect(crashed.signal).toBe('SIGKILL');
    const unfinished = await app.state.runningRotation('os-direct');
    expect(unfinished).not.toBeNull();
    const requestedAt = await app.state.now();
    const [result] = await runInline(app, ['os-direct'], {
      kind: 'offboard',
      reason: 'offboarding dave',
      requestedBy: 'test',
      terminateSessions: true,
      requestedAt,
    });
    expect(result).toMatchObject({ outcome: 'succeeded', error: null });
    expect(result?.rotationId).not.toBe(unfinished?.id);
    const rows = (
      await fx.stateQuery<{ id: string; status: string; late: boolean }>(
        'SELECT id, status, started_at >= to_timestamp($2::double precision / 1000) AS late FROM pgrotate.rotations WHERE id = ANY($1::uuid[])',
        [[unfinished?.id, result?.rotationId], requestedAt],
      )
    ).rows;
    expect(rows.find((r) => r.id === unfinished?.id)).toMatchObject({ status: 'succeeded', late: false });
    expect(rows.find((r) => r.id === result?.rotationId)).toMatchObject({ status: 'succeeded', late: true });
    await expectCurrentLogsIn(fx, provider, 'pg/os-direct');
  });
});
