import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../src/app/app-context.js';
import { parseConfigText } from '../../src/app/load-config.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import type { BaoServerInfo } from '../support/bao-server.js';
import { startCountingHttpProxy, type CountingHttpProxy } from '../support/counting-http-proxy.js';
import { startCountingPgProxy, type CountingPgProxy } from '../support/counting-pg-proxy.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';

// What one rotation costs, counted on the wire in front of the real services (issue 16): new
// PostgreSQL connections and statements through a counting TCP proxy, OpenBao calls through a
// counting HTTP proxy. Pools are warm (an earlier rotation ran in the same process), as in a
// `rotate --all` or a worker.

const bao = () => service<BaoServerInfo>('bao');

interface Cost {
  connections: Array<{ user: string; authenticated: boolean; sentPassword: boolean; startedAt: number }>;
  statements: Array<{ user: string; text: string; at: number }>;
  storeCalls: Array<{ call: string; start: number; end: number }>;
}

describe('per-rotation cost, counted against pg15 and OpenBao', () => {
  let fx: PgFixture;
  let pgProxy: CountingPgProxy;
  let baoProxy: CountingHttpProxy;
  let app: App;
  const run = randomUUID().slice(0, 8);
  const roles: string[] = [];

  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    pgProxy = await startCountingPgProxy({ host: fx.server.host, port: fx.server.port });
    baoProxy = await startCountingHttpProxy(bao().address);
    for (let i = 0; i < 3; i++)
      roles.push(await fx.createRole(`cost${i}_${fx.suffix}`, { password: `initial-unmanaged-password-${i}` }));
    const config = {
      state: {
        url: `postgres://${fx.rotator}@127.0.0.1:${pgProxy.port}/${fx.stateDb}`,
        password: 'env:TEST_ROTATOR_PASSWORD',
      },
      providers: { bao: { type: 'vault', address: baoProxy.address, mount: 'secret', token: 'env:BAO_TEST_TOKEN' } },
      targets: {
        main: {
          host: '127.0.0.1',
          port: pgProxy.port,
          database: fx.targetDb,
          sslmode: 'disable',
          admin: { username: fx.rotator, password: 'env:TEST_ROTATOR_PASSWORD' },
        },
      },
      accounts: roles.map((role, i) => ({
        name: `cost${i}`,
        target: 'main',
        role,
        provider: 'bao',
        secret: `cost-${run}/${i}`,
      })),
    };
    const env = { ...process.env, TEST_ROTATOR_PASSWORD: fx.rotatorPassword, BAO_TEST_TOKEN: bao().rootToken };
    const redactor = new Redactor();
    app = await createApp(parseConfigText(JSON.stringify(config), env), {
      redactor,
      log: createLogger(redactor, { destination: new PassThrough() }),
      env,
      // A minute, so the repeat rotation below reuses the warm-up's probe however slow this machine is.
      probeReuseMs: 60_000,
    });
    // Warm: pools connected, the KV mount checked, cost0 managed from now on.
    const warm = await app.engine.rotate(app.account('cost0'));
    expect(warm.outcome, warm.error?.message).toBe('succeeded');
  });
  afterAll(async () => {
    await app?.close();
    await pgProxy?.close();
    await baoProxy?.close();
    await fx?.cleanup();
  });

  async function measure(account: string): Promise<Cost> {
    pgProxy.reset();
    baoProxy.reset();
    const r = await app.engine.rotate(app.account(account));
    expect(r.outcome, r.error?.message).toBe('succeeded');
    // The proxies see a client's last bytes a moment after the client has them answered.
    await new Promise((res) => setTimeout(res, 100));
    const cost: Cost = {
      connections: pgProxy.opened.map((c) => ({
        user: c.user,
        authenticated: c.authenticated,
        sentPassword: c.sentPassword,
        startedAt: c.startedAt,
      })),
      statements: pgProxy.statements.map((s) => ({ user: s.user, text: s.text.replace(/\s+/g, ' '), at: s.at })),
      storeCalls: baoProxy.timings.map((t) => ({ ...t })),
    };
    const summary = {
      connections: cost.connections.map((c) => `${c.user} auth=${c.authenticated} password=${c.sentPassword}`),
      statements: cost.statements.map((s) => `${s.user}: ${s.text.slice(0, 90)}`),
      storeCalls: cost.storeCalls.map((c) => c.call),
    };
    console.log(`rotation cost (${account}): ${JSON.stringify(summary, null, 1)}`);
    return cost;
  }

  function expectTargets(cost: Cost, role: string, probed: boolean): void {
    const why = JSON.stringify(cost, null, 1);
    // Exactly one login: the verify login as the role, which PostgreSQL accepted. The pre-flight
    // probe of the login path stops at the server's password request: no password, no login; a
    // repeat rotation within the probe's reuse window (probeReuseMs) sends none.
    expect(
      cost.connections.filter((c) => c.authenticated || c.sentPassword).map((c) => [c.user, c.authenticated]),
      why,
    ).toEqual([[role, true]]);
    expect(
      cost.connections.filter((c) => !c.authenticated && !c.sentPassword).map((c) => c.user),
      why,
    ).toEqual(probed ? [role] : []);
    expect(cost.statements.length, why).toBeLessThanOrEqual(8);
    // Read current (pre-flight), create pending, write current, remove pending.
    const secret = `cost-${run}/${role.startsWith('cost1') ? 1 : 0}`;
    expect(
      cost.storeCalls.map((c) => c.call),
      why,
    ).toEqual([
      `GET /v1/secret/data/${secret}`,
      `POST /v1/secret/data/pgrotate-pending/${secret}`,
      `POST /v1/secret/data/${secret}`,
      `DELETE /v1/secret/metadata/pgrotate-pending/${secret}`,
    ]);
    // Between ALTER ROLE and the promote (the write of current) only the verify login runs: no
    // state write, no other statement, nothing else sent to the store.
    const alterAt = cost.statements.find((s) => s.text.startsWith('ALTER ROLE'))?.at ?? Number.NaN;
    const promote = cost.storeCalls.find((c) => c.call === `POST /v1/secret/data/${secret}`);
    expect(alterAt, why).toBeLessThan(promote?.start ?? Number.NaN);
    const between = cost.statements.filter((s) => s.at > alterAt && s.at < (promote?.start ?? 0));
    expect(
      between.map((s) => `${s.user}: ${s.text}`),
      why,
    ).toEqual([`${role}: SELECT current_user AS u`]);
    expect(cost.storeCalls.filter((c) => c.start > alterAt && c.start < (promote?.start ?? 0))).toEqual([]);
    const verify = cost.connections.find((c) => c.authenticated);
    expect(verify?.startedAt ?? 0, why).toBeGreaterThan(alterAt);
  }

  it('a repeat rotation (the provider holds the current credential): 1 login, no probe (reused), ≤ 8 statements, 4 store calls', async () => {
    expectTargets(await measure('cost0'), roles[0] as string, false);
  });

  it('a first rotation (nothing in the provider yet) costs no more than the probe of its login path', async () => {
    expectTargets(await measure('cost1'), roles[1] as string, true);
  });

  it('the audit trail still has every step, in order, at the time each happened', async () => {
    const r = await app.engine.rotate(app.account('cost2'));
    expect(r.outcome, r.error?.message).toBe('succeeded');
    const events = (await app.state.history('cost2')).filter((e) => e.rotationId === r.rotationId);
    expect(events.map((e) => e.kind)).toEqual([
      'rotation.started',
      'rotation.staged',
      'rotation.applied',
      'rotation.verified',
      'rotation.promoted',
      'rotation.succeeded',
    ]);
    const times = events.map((e) => e.at.getTime());
    // Steps are stamped by this process and the rest by the server (same machine here): in order.
    for (let i = 1; i < times.length; i++)
      expect(times[i], events[i]?.kind).toBeGreaterThanOrEqual((times[i - 1] as number) - 5);
    expect(new Set(times.slice(1, 5)).size).toBeGreaterThan(1);
  });
});
