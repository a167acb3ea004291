import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHeldTerminateProxy, type HeldTerminateProxy } from '../support/held-terminate-proxy.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// --terminate-sessions counts and ends the role's sessions right after the promote, while the
// verify login pgrotate opened a moment before may still be closing (it does not wait for the
// server's goodbye). On a busy machine its backend was still in pg_stat_activity, and an
// offboarding with no application session reported "sessionsEnded: 1". The proxy holds the verify
// login's goodbye so that its backend is certainly still there when the sessions are ended.

interface RotateJson {
  results: Array<{ outcome: string; sessionsEnded: number | null }>;
}

describe('--terminate-sessions leaves pgrotate own closing logins out of the count', () => {
  let fx: PgFixture;
  let proxy: HeldTerminateProxy;
  const roles = new Set<string>();
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    const su = await fx.superClient();
    await su.query(`GRANT pg_signal_backend TO ${fx.rotator}`);
    await su.end();
    const server = pgServer('pg15');
    proxy = await startHeldTerminateProxy({ host: server.host, port: server.port }, roles);
  });
  afterAll(async () => {
    proxy?.release();
    await proxy?.close();
    await fx?.cleanup();
  });

  const rotate = async (name: string, role: string) => {
    const { path, env } = fx.writeConfig({
      accounts: [{ name, target: 'main', role, provider: 'local', secret: `pg/${name}` }],
      targetExtra: { host: proxy.host, port: proxy.port },
    });
    const r = await fx.cli(['--config', path, 'rotate', name, '--terminate-sessions', '--json'], env);
    expect(r.stderr).not.toMatch(/"level":50/);
    expect(r.code).toBe(0);
    return (JSON.parse(r.stdout) as RotateJson).results[0];
  };

  it('no application session: 0 ended, although the verify login was still open', async () => {
    const role = await fx.createRole(`tso_${fx.suffix}`);
    roles.add(role);
    const heldBefore = proxy.held;
    const result = await rotate('tso', role);
    expect(result?.outcome).toBe('succeeded');
    // The verify login's goodbye was held back: its backend was alive when sessions were ended.
    expect(proxy.held).toBeGreaterThan(heldBefore);
    expect(result?.sessionsEnded).toBe(0);
  });

  it('an application session is still ended and counted once', async () => {
    const role = await fx.createRole(`tsa_${fx.suffix}`, { password: 'app-session-password-1' });
    roles.add(role);
    const server = pgServer('pg15');
    const appSession = new pg.Client({
      host: server.host,
      port: server.port,
      user: role,
      password: 'app-session-password-1',
      database: fx.targetDb,
    });
    appSession.on('error', () => undefined);
    await appSession.connect();
    try {
      const result = await rotate('tsa', role);
      expect(result?.outcome).toBe('succeeded');
      expect(result?.sessionsEnded).toBe(1);
      await expect(appSession.query('SELECT 1')).rejects.toThrow();
    } finally {
      await appSession.end().catch(() => undefined);
    }
  });
});
