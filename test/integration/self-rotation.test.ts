import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app/app-context.js';
import { loadConfigFile } from '../../src/app/load-config.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { FileProvider } from '../../providers/file/file-provider.js';
import { quoteIdent } from '../../src/core/pg/quote.js';
import { scramVerifier } from '../../src/core/scram/scram-verifier.js';
import { expectCurrentLogsIn, expectNoLostCredential, passwordsIn } from '../support/invariants.js';
import { createPgFixture, uniqueSuffix, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// Issue 18 (4): pgrotate rotates its own logins. The fixture's rotator is both the target's
// admin login and the state database's login; one account manages it, its password lives in
// the file provider, and every later command (a new process) reads it from there. A crash at
// any step leaves a state every command can still log in from (current or pending, I1).

const STEPS = ['after-stage', 'after-apply', 'after-verify', 'after-promote', 'after-record'] as const;

describe('rotating pgrotate’s own admin and state login (PostgreSQL 15)', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  /** A config whose state and admin passwords are the provider's `pg/self`, plus an application account. */
  async function selfConfig(
    tag: string,
  ): Promise<{ path: string; env: NodeJS.ProcessEnv; provider: FileProvider; appRole: string }> {
    // Each test starts from the fixture's known password (an earlier test rotated it).
    const su = await fx.superClient();
    await su.query(`ALTER ROLE ${quoteIdent(fx.rotator)} PASSWORD '${await scramVerifier(fx.rotatorPassword)}'`);
    await su.end();
    const secretsFile = join(fx.dir, `self-${tag}.json`);
    const provider = new FileProvider({ name: 'local', path: secretsFile });
    await provider.stagePending('pg/self', {
      username: fx.rotator,
      password: fx.rotatorPassword,
      host: fx.server.host,
      port: fx.server.port,
      dbname: fx.targetDb,
      engine: 'postgres',
      rotatedAt: new Date().toISOString(),
      rotationId: 'seed',
    });
    await provider.promotePending('pg/self', 'seed');
    const appRole = await fx.createRole(`app_${tag}_${uniqueSuffix()}`);
    const path = join(fx.dir, `self-${tag}.json.yaml`);
    const config = {
      state: {
        url: `postgres://${fx.rotator}@${fx.server.host}:${fx.server.port}/${fx.stateDb}`,
        password: { provider: 'local', secret: 'pg/self' },
        schema: `s_${tag}`,
      },
      providers: { local: { type: 'file', path: secretsFile } },
      targets: {
        main: {
          host: fx.server.host,
          port: fx.server.port,
          database: fx.targetDb,
          sslmode: 'disable',
          admin: { provider: 'local', secret: 'pg/self' },
        },
      },
      defaults: { verifyAttempts: 1 },
      accounts: [
        { name: 'self', target: 'main', role: fx.rotator, provider: 'local', secret: 'pg/self' },
        { name: 'app', target: 'main', role: appRole, provider: 'local', secret: 'pg/app' },
      ],
    };
    writeFileSync(path, JSON.stringify(config, null, 2), { mode: 0o600 });
    // No password in the environment: everything comes from the provider.
    const env = { ...process.env, PGROTATE_LOG_LEVEL: 'info' };
    return { path, env, provider, appRole };
  }

  it('rotates the login it runs as, in one process with another account, and every later command still works', async () => {
    const { path, env, provider } = await selfConfig('a');
    const r = await fx.cli(['--config', path, 'rotate', '--all', '--json'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const current = await expectCurrentLogsIn(fx, provider, 'pg/self');
    expect(current.password).not.toBe(fx.rotatorPassword);
    expect(await fx.canLogin(fx.rotator, fx.rotatorPassword)).toBe(false);
    // A new process reads the rotated password from the provider, for the state and the admin login.
    for (const args of [['status', '--json'], ['verify'], ['rotate', 'app'], ['rotate', 'self'], ['history', 'self']]) {
      const run = await fx.cliProcess(['--config', path, ...args], env);
      expect(run.code, `${args.join(' ')}: ${run.stdout}${run.stderr}`).toBe(0);
      // No password of the login ever shows.
      for (const pw of await passwordsIn(provider, 'pg/self')) expect(run.stdout + run.stderr).not.toContain(pw);
    }
    await expectCurrentLogsIn(fx, provider, 'pg/self');
  });

  it('a long-running process whose login another process rotated follows the provider on its next new connection', async () => {
    const { path, env, provider } = await selfConfig('l');
    const redactor = new Redactor();
    const app = await createApp(loadConfigFile(path, env), {
      redactor,
      log: createLogger(redactor, { destination: new PassThrough() }),
      env,
    });
    try {
      expect((await app.state.listAccounts()).length).toBeGreaterThanOrEqual(0);
      const other = await fx.cliProcess(['--config', path, 'rotate', 'self'], env);
      expect(other.code, other.stdout + other.stderr).toBe(0);
      // End every session of the login, so this process must open new ones with the new password.
      const su = await fx.superClient();
      await su.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [fx.rotator]);
      await su.end();
      await new Promise((r) => setTimeout(r, 300));
      // The first query may still meet a dead idle connection; the one after it must work.
      await app.state.listAccounts().catch(() => undefined);
      expect(Array.isArray(await app.state.listAccounts())).toBe(true);
      await app.targets.withAdmin('main', undefined, (c) => c.query('SELECT 1'));
      expect(app.stateCredential?.password()).toBe((await provider.getCurrent('pg/self'))?.password);
    } finally {
      await app.close();
    }
  });

  it('--terminate-sessions on its own login is refused before anything changes', async () => {
    const { path, env, provider } = await selfConfig('t');
    const before = await provider.getCurrent('pg/self');
    const r = await fx.cli(['--config', path, 'rotate', 'self', '--terminate-sessions'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/account self: --terminate-sessions would end pgrotate's own sessions/);
    expect((await provider.getCurrent('pg/self'))?.password).toBe(before?.password);
    expect(await provider.getPending('pg/self')).toBeNull();
  });

  for (const step of STEPS) {
    it(`killed ${step} while rotating its own login: the next process logs in, resumes, and I1/I2 hold`, async () => {
      const { path, env, provider } = await selfConfig(step.replace('after-', 'k'));
      const seen = new Set<string>(await passwordsIn(provider, 'pg/self'));
      const crashed = await fx.cliProcess(['--config', path, 'rotate', 'self'], {
        ...env,
        PGROTATE_FAILPOINT: step,
        PGROTATE_FAILPOINT_ACCOUNT: 'self',
      });
      expect(crashed.signal, crashed.stdout + crashed.stderr).toBe('SIGKILL');
      for (const p of await passwordsIn(provider, 'pg/self')) seen.add(p);
      await expectNoLostCredential(fx, provider, 'pg/self', [fx.rotator], seen);
      // Any command can start again (it picks whichever of current/pending logs in).
      const status = await fx.cliProcess(['--config', path, 'status'], env);
      expect(status.code, status.stdout + status.stderr).toBe(0);
      const rerun = await fx.cliProcess(['--config', path, 'rotate', 'self', '--json'], env);
      expect(rerun.code, rerun.stdout + rerun.stderr).toBe(0);
      // I3: the rerun finished the crashed record (it did not start a second one beside it),
      // except after record, when the crashed one was already complete.
      const result = (JSON.parse(rerun.stdout) as { results: Array<{ resumed: boolean }> }).results[0];
      expect(result?.resumed).toBe(step !== 'after-record');
      for (const p of await passwordsIn(provider, 'pg/self')) seen.add(p);
      await expectCurrentLogsIn(fx, provider, 'pg/self');
      await expectNoLostCredential(fx, provider, 'pg/self', [fx.rotator], seen);
      expect(await provider.getPending('pg/self')).toBeNull();
      const after = await fx.cliProcess(['--config', path, 'rotate', 'app'], env);
      expect(after.code, after.stdout + after.stderr).toBe(0);
    });
  }

  it('config: a state login rotated without state.password from the provider, or an alternating own login, is refused at load', async () => {
    const base = {
      state: {
        url: `postgres://${fx.rotator}@${fx.server.host}:${fx.server.port}/${fx.stateDb}`,
        password: 'env:TEST_ROTATOR_PASSWORD',
      },
      providers: { local: { type: 'file', path: join(fx.dir, 'cfg.json') } },
      targets: {
        main: {
          host: fx.server.host,
          port: fx.server.port,
          database: fx.targetDb,
          sslmode: 'disable',
          admin: { provider: 'local', secret: 'pg/self' },
        },
      },
    };
    const env = { ...process.env, TEST_ROTATOR_PASSWORD: fx.rotatorPassword };
    const write = (cfg: unknown) => {
      const p = join(fx.dir, `bad-${uniqueSuffix()}.yaml`);
      writeFileSync(p, JSON.stringify(cfg));
      return p;
    };
    const stale = await fx.cli(
      [
        '--config',
        write({
          ...base,
          accounts: [{ name: 'self', target: 'main', role: fx.rotator, provider: 'local', secret: 'pg/self' }],
        }),
        'status',
      ],
      env,
    );
    expect(stale.code).toBe(2);
    expect(stale.stderr).toMatch(
      /accounts\[0\]\.role: account "self" rotates rot_\w+, the state database's login; set state.password: \{ provider: local, secret: pg\/self \}/,
    );
    const alt = await fx.cli(
      [
        '--config',
        write({
          ...base,
          accounts: [
            {
              name: 'alt',
              target: 'main',
              strategy: 'alternating',
              roles: ['a', 'b'],
              provider: 'local',
              secret: 'pg/self',
            },
          ],
        }),
        'status',
      ],
      env,
    );
    expect(alt.code).toBe(2);
    expect(alt.stderr).toMatch(/accounts\[0\]\.strategy: account "alt" manages pgrotate's own login/);
    const literalAdmin = await fx.cli(
      [
        '--config',
        write({
          ...base,
          targets: {
            main: { ...base.targets.main, admin: { username: fx.rotator, password: 'env:TEST_ROTATOR_PASSWORD' } },
          },
          accounts: [{ name: 'adm', target: 'main', role: fx.rotator, provider: 'local', secret: 'pg/adm' }],
          state: { ...base.state, url: `postgres://other@${fx.server.host}:${fx.server.port}/${fx.stateDb}` },
        }),
        'status',
      ],
      env,
    );
    expect(literalAdmin.code).toBe(2);
    expect(literalAdmin.stderr).toMatch(
      /account "adm" rotates rot_\w+, the admin login of target main; set that target's admin: \{ provider: local, secret: pg\/adm \}/,
    );
  });
});
