import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { createApp } from '../../src/app/app-context.js';
import { parseConfigText } from '../../src/app/load-config.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// `pgrotate rotate` opens the admin connection of the target it is about to rotate on while the
// state database connects, not after. Shown by holding the state database up (a lock on the
// migrations table that the start-up check has to wait for) and looking for the admin session
// meanwhile.

interface Session {
  datname: string;
  application_name: string;
  wait_event_type: string | null;
}

/** The sessions of `user` in the cluster. */
async function sessionsOf(su: pg.Client, user: string): Promise<Session[]> {
  return (
    await su.query<Session>(
      `SELECT datname, application_name, wait_event_type FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()`,
      [user],
    )
  ).rows;
}

/** Poll until `check` holds (or `ms` passed); returns its last value. */
async function until<T>(read: () => Promise<T>, check: (v: T) => boolean, ms = 15_000): Promise<T> {
  let v = await read();
  for (let i = 0; i < ms / 50 && !check(v); i++) {
    await new Promise((r) => setTimeout(r, 50));
    v = await read();
  }
  return v;
}

describe('CLI start-up: the admin connection opens while the state database connects', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  /** Run `rotate` with the state database held at its migration check; the sessions seen meanwhile. */
  async function rotateWhileStateHeld(
    configPath: string,
    env: NodeJS.ProcessEnv,
    extraArgs: string[] = [],
  ): Promise<{ during: Session[]; code: number; stderr: string }> {
    const holder = await fx.superClient(fx.stateDb);
    // Not the holder: inside its transaction pg_stat_activity would stay the snapshot of its first read.
    const observer = await fx.superClient();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE pgrotate.schema_migrations IN ACCESS EXCLUSIVE MODE');
      const run = fx.cliProcess(['--config', configPath, 'rotate', 'warm', ...extraArgs], env);
      const during = await until(
        () => sessionsOf(observer, fx.rotator),
        (rows) => rows.some((r) => r.application_name === 'pgrotate-state' && r.wait_event_type === 'Lock'),
      );
      expect(
        during.some((r) => r.application_name === 'pgrotate-state' && r.wait_event_type === 'Lock'),
        'the CLI waits on the state database',
      ).toBe(true);
      // Give a warm-up that would come late every chance to show up before judging its absence.
      await new Promise((r) => setTimeout(r, 300));
      const settled = await sessionsOf(observer, fx.rotator);
      await holder.query('ROLLBACK');
      const res = await run;
      return { during: settled, code: res.code, stderr: res.stderr };
    } finally {
      await holder.end();
      await observer.end();
    }
  }

  it('rotate: the target admin session exists while the state check waits; a queued rotate opens none', async () => {
    const role = await fx.createRole(`warm_${fx.suffix}`);
    const account = { name: 'warm', target: 'main', role, provider: 'local', secret: 'pg/warm' };
    const { path, env } = fx.writeConfig({ accounts: [account] });
    const first = await fx.cli(['--config', path, 'status'], env); // creates the state schema
    expect(first.code, first.stderr).toBe(0);

    const direct = await rotateWhileStateHeld(path, env);
    expect(direct.code, direct.stderr).toBe(0);
    expect(direct.during).toContainEqual(
      expect.objectContaining({ datname: fx.targetDb, application_name: 'pgrotate' }),
    );

    // With a queue the rotation goes to the workers: no admin connection is needed here.
    const queued = fx.writeConfig({ accounts: [account], extra: { queue: { backend: 'postgres' } } });
    const viaQueue = await rotateWhileStateHeld(queued.path, queued.env);
    expect(viaQueue.code, viaQueue.stderr).toBe(0);
    expect(viaQueue.during.filter((r) => r.datname === fx.targetDb)).toEqual([]);
  });

  it('a wrong admin password: the warm-up stays silent, the rotation reports it naming account and target, the password appears nowhere', async () => {
    const role = await fx.createRole(`warm_bad_${fx.suffix}`);
    const wrong = `wrong-admin-${fx.suffix}-Pw`;
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'warm-bad', target: 'main', role, provider: 'local', secret: 'pg/warm-bad' }],
      targetExtra: { admin: { username: fx.rotator, password: 'env:WARM_BAD_ADMIN_PASSWORD' } },
    });
    const r = await fx.cli(['--config', path, 'rotate', 'warm-bad', '--json'], {
      ...env,
      WARM_BAD_ADMIN_PASSWORD: wrong,
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/account warm-bad: target main \(.*\): cannot connect as admin/);
    expect(`${r.stdout}${r.stderr}`).not.toContain(wrong);
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    expect(await provider.getPending('pg/warm-bad')).toBeNull();
  });

  it('rotate naming an unknown account fails at once even when a named account has a target that never answers', async () => {
    // Accepts connections and never answers: a connection attempt lasts its whole timeout.
    const silent = createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    try {
      const role = await fx.createRole(`warm_slow_${fx.suffix}`);
      const { path, env } = fx.writeConfig({
        accounts: [{ name: 'warm-slow', target: 'main', role, provider: 'local', secret: 'pg/warm-slow' }],
        targetExtra: { port, connectTimeout: '8s' },
      });
      const t0 = Date.now();
      const r = await fx.cli(['--config', path, 'rotate', 'warm-slow', 'no-such-account'], env);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/unknown account "no-such-account"/);
      // Well under the 8 s connect timeout that a warm-up of the slow target would have waited for.
      expect(Date.now() - t0).toBeLessThan(6_000);
    } finally {
      silent.close();
    }
  });

  it('an account busy elsewhere exits 3 at once even while the warm-up waits on a target that never answers', async () => {
    const silent = createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    const holder = await fx.rotatorClient(fx.stateDb);
    try {
      const role = await fx.createRole(`warm_busy_${fx.suffix}`);
      const { path, env } = fx.writeConfig({
        accounts: [{ name: 'warm-busy', target: 'main', role, provider: 'local', secret: 'pg/warm-busy' }],
        targetExtra: { port, connectTimeout: '8s' },
      });
      // Another process's rotation of the account: its fence (src/core/state/state-store.ts).
      await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', ['pgrotate:pgrotate:warm-busy']);
      const t0 = Date.now();
      const r = await fx.cli(['--config', path, 'rotate', 'warm-busy'], env);
      expect(r.code, r.stdout + r.stderr).toBe(3);
      expect(Date.now() - t0).toBeLessThan(6_000);
    } finally {
      await holder.end();
      silent.close();
    }
  });

  it('a state database that refuses fails at once even while the warm-up waits on a target that never answers', async () => {
    const silent = createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    try {
      const { path, env } = fx.writeConfig({ accounts: [], targetExtra: { port, connectTimeout: '8s' } });
      const loaded = parseConfigText(
        JSON.stringify({
          ...(JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>),
          state: { url: `postgres://${fx.rotator}@${fx.server.host}:1/${fx.stateDb}`, password: fx.rotatorPassword },
        }),
        env,
      );
      const t0 = Date.now();
      await expect(createApp(loaded, { env, warmTargets: ['main'] })).rejects.toThrow(/state database/);
      expect(Date.now() - t0).toBeLessThan(6_000);
    } finally {
      silent.close();
    }
  });

  it('a state database that cannot be reached fails as before and leaves no admin session open', async () => {
    const { path, env } = fx.writeConfig({ accounts: [] });
    const loaded = parseConfigText(
      JSON.stringify({
        ...(JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>),
        state: { url: `postgres://${fx.rotator}@${fx.server.host}:1/${fx.stateDb}`, password: fx.rotatorPassword },
      }),
      env,
    );
    const failed = await createApp(loaded, { env, warmTargets: ['main'] }).then(
      () => null,
      (err: unknown) => err as Error,
    );
    expect(failed?.message).toMatch(/state database/);
    expect(failed?.message).not.toContain(fx.rotatorPassword);
    const su = await fx.superClient();
    try {
      const left = await until(
        () => sessionsOf(su, fx.rotator),
        (rows) => rows.every((r) => r.datname !== fx.targetDb),
        // Well inside the pool's 10 s idle timeout: the failed start closed it, not the timeout.
        3_000,
      );
      expect(left.filter((r) => r.datname === fx.targetDb)).toEqual([]);
    } finally {
      await su.end();
    }
  });
});
