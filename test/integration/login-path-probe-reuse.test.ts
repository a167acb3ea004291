import { readFileSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../src/app/app-context.js';
import type { TargetConfig } from '../../src/core/config/config-schema.js';
import { TargetConnector } from '../../src/core/pg/target-connector.js';
import { parseConfigText } from '../../src/app/load-config.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { startCountingPgProxy, type CountingPgProxy } from '../support/counting-pg-proxy.js';
import { setHbaLine } from '../support/pg-hba.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// Issue 25: an open answer of the pre-flight's login-path probe serves the same role's rotations
// started within a short window (probeReuseMs), counted on the wire by a proxy in front of the
// real PostgreSQL 15. The probe's protection stays: a reused answer serves only a rotation whose
// refused verify the rollback undoes (a pg_hba.conf changed meanwhile is caught there, the
// previous credential restored), and a first rotation, which has nothing to restore, probes afresh.

const WINDOW_MS = 1500;

describe('login-path probe reuse within a window (PostgreSQL 15)', () => {
  let fx: PgFixture;
  let proxy: CountingPgProxy;
  let app: App;
  const roles: string[] = [];

  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    proxy = await startCountingPgProxy({ host: fx.server.host, port: fx.server.port });
    for (const name of ['twice', 'hba', 'first', 'conn'])
      roles.push(await fx.createRole(`pw${name}_${fx.suffix}`, { password: `${name}-initial-password-1` }));
    const config = {
      state: {
        url: `postgres://${fx.rotator}@${fx.server.host}:${fx.server.port}/${fx.stateDb}`,
        password: 'env:TEST_ROTATOR_PASSWORD',
      },
      providers: { local: { type: 'file', path: fx.secretsFile } },
      targets: {
        main: {
          host: '127.0.0.1',
          port: proxy.port,
          database: fx.targetDb,
          sslmode: 'disable',
          admin: { username: fx.rotator, password: 'env:TEST_ROTATOR_PASSWORD' },
        },
      },
      defaults: { verifyAttempts: 2 },
      accounts: roles.slice(0, 3).map((role, i) => ({
        name: `a${i}`,
        target: 'main',
        role,
        provider: 'local',
        secret: `pg/a${i}`,
      })),
    };
    const env = { ...process.env, TEST_ROTATOR_PASSWORD: fx.rotatorPassword };
    const redactor = new Redactor();
    app = await createApp(parseConfigText(JSON.stringify(config), env), {
      redactor,
      log: createLogger(redactor, { destination: new PassThrough() }),
      env,
      verifyBackoffMs: 20,
      probeReuseMs: WINDOW_MS,
    });
  });
  afterAll(async () => {
    await app?.close();
    await proxy?.close();
    await fx?.cleanup();
  });

  /** Probes of `role` seen on the wire so far: a startup message as the role from the pre-flight, no password, no login. */
  const probes = (role: string) =>
    proxy.opened.filter(
      (c) => c.user === role && c.applicationName === 'pgrotate-preflight' && !c.authenticated && !c.sentPassword,
    ).length;

  async function rolpassword(role: string): Promise<string | null> {
    const c = await fx.superClient();
    try {
      return (
        (await c.query<{ p: string | null }>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [role]))
          .rows[0]?.p ?? null
      );
    } finally {
      await c.end();
    }
  }

  const currentPassword = (secret: string) =>
    (JSON.parse(readFileSync(fx.secretsFile, 'utf8')) as Record<string, { password: string }>)[secret]?.password;

  it('two rotations of the same role within the window probe once; after the window, again', async () => {
    const role = roles[0] as string;
    const first = await app.engine.rotate(app.account('a0'));
    expect(first.outcome, first.error?.message).toBe('succeeded');
    expect(probes(role)).toBe(1);
    const second = await app.engine.rotate(app.account('a0'));
    expect(second.outcome, second.error?.message).toBe('succeeded');
    expect(probes(role)).toBe(1);
    await new Promise((r) => setTimeout(r, WINDOW_MS + 200));
    const third = await app.engine.rotate(app.account('a0'));
    expect(third.outcome, third.error?.message).toBe('succeeded');
    expect(probes(role)).toBe(2);
  });

  it('pg_hba.conf refusing the role within the window: the verify login is refused and the previous credential restored', async () => {
    const role = roles[1] as string;
    const ok = await app.engine.rotate(app.account('a1'));
    expect(ok.outcome, ok.error?.message).toBe('succeeded');
    const before = await rolpassword(role);
    const password = currentPassword('pg/a1') as string;
    const line = `host all ${role} 127.0.0.1/32 reject`;
    await setHbaLine(fx, line, true);
    let r;
    try {
      r = await app.engine.rotate(app.account('a1'));
    } finally {
      await setHbaLine(fx, line, false);
    }
    // The open answer of a moment ago served (no second probe); the verify login caught the refusal.
    expect(probes(role)).toBe(1);
    expect(r.outcome).toBe('failed');
    expect(r.error?.message).toMatch(
      /did not log in .*pg_hba\.conf rejects connection.*the previous credential was restored/,
    );
    expect(r.error?.message).not.toContain(password);
    // The restored verifier is the previous password's (with a salt of its own): it logs in below.
    expect(await rolpassword(role)).not.toBe(before);
    expect(currentPassword('pg/a1')).toBe(password);
    // What applications read still logs in.
    const c = new pg.Client({
      host: fx.server.host,
      port: fx.server.port,
      database: fx.targetDb,
      user: role,
      password,
    });
    await c.connect();
    expect((await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u).toBe(role);
    await c.end();
  });

  it('a first rotation probes afresh: a refusing pg_hba.conf is caught before anything changes', async () => {
    const role = roles[2] as string;
    const ok = await app.engine.rotate(app.account('a2'));
    expect(ok.outcome, ok.error?.message).toBe('succeeded');
    expect(probes(role)).toBe(1);
    // The provider no longer holds a value for the account (an operator removed it): the next
    // rotation is a first one, with nothing the rollback could restore.
    const store = JSON.parse(readFileSync(fx.secretsFile, 'utf8')) as Record<string, unknown>;
    delete store['pg/a2'];
    writeFileSync(fx.secretsFile, JSON.stringify(store), { mode: 0o600 });
    const before = await rolpassword(role);
    const line = `host all ${role} 127.0.0.1/32 reject`;
    await setHbaLine(fx, line, true);
    let r;
    try {
      r = await app.engine.rotate(app.account('a2'));
    } finally {
      await setHbaLine(fx, line, false);
    }
    expect(probes(role)).toBe(2);
    expect(r.outcome).toBe('failed');
    expect(r.error?.message).toMatch(/pg_hba\.conf refuses a password login as role .* Nothing was changed/);
    expect(await rolpassword(role)).toBe(before);
  });

  it('the connector: concurrent requests share one probe; a refused answer is never reused', async () => {
    const role = roles[3] as string;
    const target = { host: '127.0.0.1', port: proxy.port, database: fx.targetDb, sslmode: 'disable' };
    const t = new TargetConnector({
      targets: { main: target as unknown as TargetConfig },
      resolveAdmin: async () => ({ username: fx.rotator, password: fx.rotatorPassword }),
      redactor: new Redactor(),
      probeReuseMs: 60_000,
    });
    try {
      const both = await Promise.all([
        t.probeLoginPath('main', role, { reuse: true }),
        t.probeLoginPath('main', role, { reuse: true }),
      ]);
      expect(both).toEqual([{ open: true }, { open: true, reused: true }]);
      expect(probes(role)).toBe(1);
      // Without `reuse` a probe is always sent.
      expect(await t.probeLoginPath('main', role)).toEqual({ open: true });
      expect(probes(role)).toBe(2);
      const line = `host all ${role} 127.0.0.1/32 reject`;
      await setHbaLine(fx, line, true);
      try {
        expect(await t.probeLoginPath('main', role)).toMatchObject({ open: false, reason: 'host-refused' });
      } finally {
        await setHbaLine(fx, line, false);
      }
      // The refusal replaced the open answer and is not kept: the next request probes again.
      expect(await t.probeLoginPath('main', role, { reuse: true })).toEqual({ open: true });
      expect(probes(role)).toBe(4);
    } finally {
      await t.close();
    }
  });
});
