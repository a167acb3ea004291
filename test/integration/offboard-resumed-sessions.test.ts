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

// Found by the chaos run (issue 19, offboard-race): an offboarding first finishes a rotation a
// crashed process left unfinished, with the offboarding's --terminate-sessions, so that rotation
// ends the sessions; then it runs its own rotation, which finds none left. The report said
// "0 sessions ended" although the offboarding had ended the application's session.

describe('offboarding after a crashed rotation: the sessions it ended are reported', () => {
  let fx: PgFixture;
  let app: App;
  let config: { path: string; env: NodeJS.ProcessEnv };
  const sessions: pg.Client[] = [];
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    const role = await fx.createRole(`ors_${fx.suffix}`);
    const su = await fx.superClient();
    await su.query(`GRANT pg_signal_backend TO ${fx.rotator}`);
    await su.end();
    config = writeJobsConfig(
      fx,
      { accounts: [{ name: 'ors', target: 'main', role, provider: 'local', secret: 'pg/ors', exposedTo: ['erin'] }] },
      {},
    );
    const redactor = new Redactor();
    app = await createApp(loadConfigFile(config.path, config.env), {
      redactor,
      log: createLogger(redactor, { destination: new PassThrough() }),
      env: config.env,
    });
    expect((await app.engine.rotate(app.account('ors'))).outcome).toBe('succeeded');
  });
  afterAll(async () => {
    for (const s of sessions) await s.end().catch(() => undefined);
    await app?.close();
    await fx?.cleanup();
  });

  /** An application session with the credential the departing person saw (the current value). */
  async function openApplicationSession(
    provider: FileProvider,
  ): Promise<{ v: Awaited<ReturnType<FileProvider['getCurrent']>>; session: pg.Client }> {
    const v = await provider.getCurrent('pg/ors');
    const session = new pg.Client({
      host: fx.server.host,
      port: fx.server.port,
      user: v?.username,
      password: v?.password,
      database: fx.targetDb,
    });
    session.on('error', () => undefined);
    await session.connect();
    sessions.push(session);
    return { v, session };
  }

  it('counts the session the resumed rotation ended for the request', async () => {
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    const { v, session } = await openApplicationSession(provider);
    const pid = (await session.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
    // A scheduled rotation crashes right after ALTER ROLE (the session stays open).
    const crashed = await fx.cliProcess(['--config', config.path, 'rotate', 'ors'], {
      ...config.env,
      PGROTATE_FAILPOINT: 'after-apply',
    });
    expect(crashed.signal).toBe('SIGKILL');
    expect(await app.state.runningRotation('ors')).not.toBeNull();

    const requestedAt = await app.state.now();
    const [result] = await runInline(app, ['ors'], {
      kind: 'offboard',
      reason: 'offboarding erin',
      requestedBy: 'test',
      terminateSessions: true,
      requestedAt,
    });
    expect(result).toMatchObject({ outcome: 'succeeded', error: null });
    const su = await fx.superClient(fx.targetDb);
    const left = (await su.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount;
    await su.end();
    expect(left).toBe(0);
    expect(result?.sessionsEnded).toBe(1);
    expect(await fx.canLogin(v?.username as string, v?.password as string)).toBe(false);
    await expectCurrentLogsIn(fx, provider, 'pg/ors');
  });

  it('a rotation that started after the request and was left unfinished is finished ending the sessions, says so, and satisfies it', async () => {
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    const { session } = await openApplicationSession(provider);
    const requestedAt = await app.state.now();
    // A scheduled rotation racing the offboarding starts after it and crashes after ALTER ROLE.
    const crashed = await fx.cliProcess(['--config', config.path, 'rotate', 'ors'], {
      ...config.env,
      PGROTATE_FAILPOINT: 'after-apply',
    });
    expect(crashed.signal).toBe('SIGKILL');
    const unfinished = await app.state.runningRotation('ors');
    expect(unfinished?.terminateSessions).toBe(false);

    const [result] = await runInline(app, ['ors'], {
      kind: 'offboard',
      reason: 'offboarding erin',
      requestedBy: 'hr-offboarding',
      terminateSessions: true,
      requestedAt,
    });
    // That rotation, finished with the request's --terminate-sessions, did all it asked.
    expect(result).toMatchObject({
      outcome: 'succeeded',
      error: null,
      rotationId: unfinished?.id,
      resumed: true,
      sessionsEnded: 1,
    });
    const rec = (
      await fx.stateQuery<{ terminate_sessions: boolean; sessions_ended: number }>(
        'SELECT terminate_sessions, sessions_ended FROM pgrotate.rotations WHERE id = $1',
        [unfinished?.id],
      )
    ).rows[0];
    expect(rec).toEqual({ terminate_sessions: true, sessions_ended: 1 });
    // The sessions were ended because the offboarding asked: the audit trail names it, not the
    // scheduled rotation's requester.
    const ended = await fx.stateQuery<{ actor: string | null }>(
      "SELECT actor FROM pgrotate.audit_events WHERE rotation_id = $1 AND kind = 'sessions.terminated'",
      [unfinished?.id],
    );
    expect(ended.rows).toEqual([{ actor: 'hr-offboarding' }]);
    expect(
      await session.query('SELECT 1').then(
        () => true,
        () => false,
      ),
    ).toBe(false);
    await expectCurrentLogsIn(fx, provider, 'pg/ors');
  });
  it('a retried offboarding job that finds the request already satisfied still counts the sessions ended for it before', async () => {
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    await openApplicationSession(provider);
    const crashed = await fx.cliProcess(['--config', config.path, 'rotate', 'ors'], {
      ...config.env,
      PGROTATE_FAILPOINT: 'after-apply',
    });
    expect(crashed.signal).toBe('SIGKILL');
    const requestedAt = await app.state.now();
    // The offboarding job's first attempt: it resumes the crashed rotation with
    // --terminate-sessions (ending the application's session), then runs its own, which finds no
    // session left; the worker dies before the job's result is stored.
    const account = app.account('ors');
    // The killed process's backend may still hold the account's fence for a moment (PostgreSQL
    // notices a dead client on its own time): until then the attempt is `busy`, as it should be.
    let resumed = await app.engine.rotate(account, { requestedBy: 'hr-offboarding', terminateSessions: true });
    for (let i = 0; resumed.outcome === 'busy' && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      resumed = await app.engine.rotate(account, { requestedBy: 'hr-offboarding', terminateSessions: true });
    }
    expect(resumed).toMatchObject({ outcome: 'succeeded', resumed: true, sessionsEnded: 1 });
    const own = await app.engine.rotate(account, { requestedBy: 'hr-offboarding', terminateSessions: true });
    expect(own).toMatchObject({ outcome: 'succeeded', resumed: false, sessionsEnded: 0 });
    // The retried attempt finds the request satisfied: its report still says one session ended.
    const [result] = await runInline(app, ['ors'], {
      kind: 'offboard',
      reason: 'offboarding erin',
      requestedBy: 'hr-offboarding',
      terminateSessions: true,
      requestedAt,
    });
    expect(result).toMatchObject({ outcome: 'skipped', rotationId: own.rotationId, sessionsEnded: 1 });
    await expectCurrentLogsIn(fx, provider, 'pg/ors');
  });
});
