import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertDispatcher } from '../../src/core/alerts/alert-dispatcher.js';
import { alertsSchema } from '../../src/core/config/config-schema.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { StateStore } from '../../src/core/state/state-store.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';

// The webhook dispatcher against real HTTP receivers on 127.0.0.1, delivering from the outbox in a
// real state database (PostgreSQL 15): each test has a state schema of its own.

let fx: PgFixture;
const stores: StateStore[] = [];
let schemas = 0;

beforeAll(async () => {
  fx = await createPgFixture(pgServer('pg15'));
});

afterAll(async () => {
  for (const s of stores) await s.close().catch(() => undefined);
  await fx?.cleanup();
});

const SECRET = 'Wq7PasswordThatMustNotLeak99';

async function dispatcher(webhooks: unknown[], extra: Record<string, unknown> = {}) {
  const redactor = new Redactor();
  redactor.add(SECRET);
  let logs = '';
  const sink = new PassThrough();
  sink.on('data', (d: Buffer) => (logs += d.toString()));
  const config = alertsSchema.parse({ webhooks, backoff: '1s', ...extra });
  const state = await StateStore.open({
    connection: {
      host: fx.server.host,
      port: fx.server.port,
      user: fx.rotator,
      password: fx.rotatorPassword,
      database: fx.stateDb,
    },
    schema: `alerts_${++schemas}`,
    redactor,
  });
  stores.push(state);
  const d = new AlertDispatcher({
    config,
    redactor,
    log: createLogger(redactor, { destination: sink, level: 'debug' }),
    outbox: state.outbox,
  });
  await d.start();
  return { d, logs: () => logs };
}

const failure = (account = 'billing') => ({
  event: 'rotation.failed' as const,
  account,
  target: 'main',
  message: `account ${account}: provider said the password ${SECRET} was rejected`,
  detail: { password: SECRET, nested: [{ note: `has ${SECRET}` }] },
  at: new Date(),
});

describe('alert webhooks', () => {
  it('retries a failing receiver with backoff (500, 500, then 200) and delivers exactly once, without the secret', async () => {
    const rx = await startWebhookReceiver([500, 500, 200]);
    const { d, logs } = await dispatcher([{ url: rx.url, format: 'json', headers: { 'x-team': 'dba' } }]);
    const t0 = Date.now();
    d.emit(failure());
    expect(Date.now() - t0).toBeLessThan(50);
    const got = await rx.waitFor(3);
    await new Promise((r) => setTimeout(r, 300));
    expect(got.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(rx.received).toHaveLength(3);
    expect(d.stats).toMatchObject({ delivered: 1, failed: 0, dropped: 0 });
    // Backoff 1 s then 2 s, each with up to half jitter.
    expect((got[1]?.at ?? 0) - (got[0]?.at ?? 0)).toBeGreaterThanOrEqual(450);
    expect((got[2]?.at ?? 0) - (got[1]?.at ?? 0)).toBeGreaterThanOrEqual(950);
    const body = JSON.parse(got[2]?.body ?? '{}') as Record<string, unknown>;
    expect(body).toMatchObject({ source: 'pgrotate', event: 'rotation.failed', account: 'billing', target: 'main' });
    expect(got[2]?.headers['x-team']).toBe('dba');
    for (const r of got) expect(r.body).not.toContain(SECRET);
    expect(logs()).not.toContain(SECRET);
    expect(logs()).toContain('will retry');
    await rx.close();
  });

  it('sends Slack-compatible {text} and only the subscribed events', async () => {
    const rx = await startWebhookReceiver();
    const { d } = await dispatcher([{ url: rx.url, format: 'slack', events: ['offboard.completed'] }]);
    d.emit(failure());
    d.emit({
      event: 'offboard.completed',
      account: null,
      target: null,
      message: 'offboarding alice: 2 account(s) rotated, 0 failed',
      detail: {},
      at: new Date(),
    });
    expect(await d.drain(5000)).toBe(true);
    expect(rx.received).toHaveLength(1);
    expect(JSON.parse(rx.received[0]?.body ?? '{}')).toEqual({
      text: 'pgrotate offboard.completed: offboarding alice: 2 account(s) rotated, 0 failed',
    });
    await rx.close();
  });

  it('repeats the same failure at most once per repeatInterval', async () => {
    const rx = await startWebhookReceiver();
    const { d } = await dispatcher([{ url: rx.url }], { repeatInterval: '1h' });
    d.emit(failure('a'));
    d.emit(failure('a'));
    d.emit(failure('b'));
    await d.drain(5000);
    expect(rx.received.map((r) => (JSON.parse(r.body) as { account: string }).account).sort()).toEqual(['a', 'b']);
    expect(d.stats.suppressed).toBe(1);
    await rx.close();
  });

  it('never blocks the caller: alerts beyond the bounded buffer are dropped, and shutdown does not wait for a hung receiver', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const hang = createServer(() => undefined);
    hang.on('connection', (s) => sockets.add(s));
    await new Promise<void>((resolve) => hang.listen(0, '127.0.0.1', () => resolve()));
    const url = `http://127.0.0.1:${(hang.address() as AddressInfo).port}/`;
    const { d } = await dispatcher([{ url }], { queueSize: 10, timeout: '30s' });
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) d.emit(failure(`acct-${i}`));
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeLessThan(500);
    expect(d.size).toBe(10);
    expect(d.stats.dropped).toBe(990);
    // Shutdown gives up after its bound instead of waiting for the receiver.
    const c0 = Date.now();
    await d.close(300);
    expect(Date.now() - c0).toBeLessThan(2000);
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => hang.close(() => resolve()));
  });

  it('after the configured attempts a delivery is failing: logged once, still retried', async () => {
    const rx = await startWebhookReceiver([503]);
    const { d, logs } = await dispatcher([{ url: rx.url }], { attempts: 2, backoff: '100ms', maxBackoff: '200ms' });
    d.emit(failure());
    await rx.waitFor(4);
    await new Promise((r) => setTimeout(r, 100));
    expect(d.stats).toMatchObject({ delivered: 0, failed: 1 });
    expect(logs().match(/webhook delivery failing/g)).toHaveLength(1);
    const [backlog] = await d.backlog();
    expect(backlog).toMatchObject({ pending: 1, failing: 1, lastError: 'HTTP 503' });
    await d.close(0);
    await rx.close();
  });
});
