import { createHmac, timingSafeEqual } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { createApp } from '../../src/app/app-context.js';
import { loadConfigFile } from '../../src/app/load-config.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { PgrotateMetrics } from '../../src/services/metrics/pgrotate-metrics.js';
import { freePort } from '../support/free-port.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';
import { startWebhookReceiver, type Received } from '../support/webhook-receiver.js';

// The webhook outbox end to end on PostgreSQL 15 with real HTTP receivers on 127.0.0.1: events of
// real rotations (the CLI, in-process and the built one as a child process), delivered after the
// receiver was down by a later process, signed, as CloudEvents, and failing ones made visible.
// One state database for the file: the tests run one after the other, each with its own accounts,
// roles and receivers (each process writes its config's webhooks as the trigger's subscriptions).

let fx: PgFixture;

beforeAll(async () => {
  fx = await createPgFixture(pgServer('pg15'));
});

afterAll(async () => {
  await fx?.cleanup();
});

const HOOK_SECRET = 'hook-secret-4fQ9zLm2Rt7Xw';
/** Short intervals, so retries and polling fit a test. */
const FAST = { backoff: '100ms', maxBackoff: '300ms', pollInterval: '200ms' };

// The receiver's check of X-Pgrotate-Signature, exactly as docs/operations.md shows it.
function verifySignature(secret: string, header: string, body: string, maxAgeSeconds = 300): boolean {
  const { t, v1 } = Object.fromEntries(header.split(',').map((kv) => kv.split('=')));
  if (!t || !v1 || Math.abs(Date.now() / 1000 - Number(t)) > maxAgeSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  const given = Buffer.from(v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const json = (r: Received | undefined) => JSON.parse(r?.body ?? '{}') as Record<string, unknown>;

async function currentPassword(secret: string): Promise<string> {
  const cur = await new FileProvider({ name: 'local', path: fx.secretsFile }).getCurrent(secret);
  return cur?.password as string;
}

/** Every outbox row (all columns as text) and every subscription, for leak scans. */
async function outboxText(): Promise<string> {
  const rows = await fx.stateQuery<{ t: string }>(
    `SELECT o::text AS t FROM pgrotate.webhook_outbox o UNION ALL SELECT s::text FROM pgrotate.webhook_subscriptions s`,
  );
  return rows.rows.map((r) => r.t).join('\n');
}

describe('a rotation told to webhooks', () => {
  let signed: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let cloud: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let role: string;
  let password: string;
  let hookKey: string;

  beforeAll(async () => {
    signed = await startWebhookReceiver();
    cloud = await startWebhookReceiver();
    role = await fx.createRole(`wo_app_${fx.suffix}`, { password: 'initial-outbox-password-1' });
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'app', target: 'main', role, provider: 'local', secret: 'pg/app' }],
      extra: {
        alerts: {
          ...FAST,
          webhooks: [
            { url: signed.url, format: 'json', secret: 'env:HOOK_SECRET', events: ['rotation.succeeded'] },
            { url: cloud.url, format: 'cloudevents', events: ['rotation.succeeded', 'rotation.failed'] },
          ],
        },
      },
    });
    const run = await fx.cli(['--config', path, 'rotate', 'app'], { ...env, HOOK_SECRET });
    expect(run.code, run.stderr).toBe(0);
    password = await currentPassword('pg/app');
    const keys = await fx.stateQuery<{ webhook: string }>(
      `SELECT DISTINCT webhook FROM pgrotate.webhook_outbox WHERE account = 'app' AND event = 'rotation.succeeded'`,
    );
    hookKey = keys.rows.map((r) => r.webhook).join(',');
  });

  afterAll(async () => {
    await signed?.close();
    await cloud?.close();
  });

  it('rotate delivers rotation.succeeded with account, target, role, secret reference, rotation id and times; the password is in no outbox row, body or header', async () => {
    // The CLI waited for its deliveries before exiting: both are in already.
    expect(signed.received).toHaveLength(1);
    const body = json(signed.received[0]);
    const rotation = await fx.stateQuery<{ id: string }>(
      `SELECT id::text FROM pgrotate.rotations WHERE account = 'app' AND status = 'succeeded'`,
    );
    expect(rotation.rows).toHaveLength(1);
    expect(body).toMatchObject({
      source: 'pgrotate',
      event: 'rotation.succeeded',
      account: 'app',
      target: 'main',
      role,
      secretRef: { provider: 'local', secret: 'pg/app' },
      rotationId: rotation.rows[0]?.id,
    });
    expect(typeof body.id).toBe('string');
    const times = body.rotation as Record<string, string | null>;
    for (const t of [body.at, times.startedAt, times.finishedAt])
      expect(Number.isNaN(Date.parse(String(t)))).toBe(false);
    expect(Date.parse(String(times.startedAt))).toBeLessThanOrEqual(Date.parse(String(times.finishedAt)));
    expect(signed.received[0]?.headers['content-type']).toBe('application/json');

    // The new password logs in, and is nowhere in the outbox or in what the receivers got.
    expect(await fx.canLogin(role, password)).toBe(true);
    expect(hookKey.split(',')).toHaveLength(2);
    const stored = await outboxText();
    expect(stored).toContain('rotation.succeeded');
    for (const secret of [password, 'initial-outbox-password-1', fx.rotatorPassword, HOOK_SECRET]) {
      expect(stored).not.toContain(secret);
      for (const r of [...signed.received, ...cloud.received]) {
        expect(r.body).not.toContain(secret);
        expect(JSON.stringify(r.headers)).not.toContain(secret);
      }
    }
    const undelivered = await fx.stateQuery(
      `SELECT 1 FROM pgrotate.webhook_outbox WHERE account = 'app' AND delivered_at IS NULL`,
    );
    expect(undelivered.rowCount).toBe(0);
  });

  it('X-Pgrotate-Signature verifies with the documented receiver code and the webhook secret; a wrong secret or a changed body does not', () => {
    const r = signed.received[0] as Received;
    const header = r.headers['x-pgrotate-signature'];
    expect(typeof header).toBe('string');
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(HOOK_SECRET, header as string, r.body)).toBe(true);
    expect(verifySignature('another-secret-of-some-length', header as string, r.body)).toBe(false);
    expect(verifySignature(HOOK_SECRET, header as string, r.body.replace('"app"', '"apq"'))).toBe(false);
    // An old timestamp is refused, however good its HMAC.
    expect(verifySignature(HOOK_SECRET, header as string, r.body, -1)).toBe(false);
    // A webhook without a secret sends no signature.
    expect(cloud.received[0]?.headers['x-pgrotate-signature']).toBeUndefined();
  });

  it('format cloudevents: a structured CloudEvent 1.0 with the event document as data', () => {
    expect(cloud.received).toHaveLength(1);
    const r = cloud.received[0] as Received;
    expect(r.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
    const ce = json(r);
    expect(ce).toMatchObject({
      specversion: '1.0',
      source: 'pgrotate',
      type: 'io.pgrotate.rotation.succeeded',
      subject: 'app',
      datacontenttype: 'application/json',
      data: { event: 'rotation.succeeded', account: 'app', target: 'main', role },
    });
    expect(typeof ce.id).toBe('string');
    expect((ce.id as string).length).toBeGreaterThan(0);
    expect(new Date(String(ce.time)).toISOString()).toBe(ce.time);
    expect((ce.data as Record<string, unknown>).id).toBe(ce.id);
  });
});

describe('a receiver that is down', () => {
  it('does not hold the command past its bound; a later process delivers what was left, in order per account', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/hook`;
    const role = await fx.createRole(`wo_down_${fx.suffix}`, { password: 'initial-outbox-password-2' });
    const steps = [
      'rotation.started',
      'rotation.staged',
      'rotation.applied',
      'rotation.verified',
      'rotation.succeeded',
    ];
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'down', target: 'main', role, provider: 'local', secret: 'pg/down' }],
      extra: { alerts: { ...FAST, webhooks: [{ url, events: steps }] } },
    });
    /** The subscribed audit events of the account, in the order they were recorded. */
    const audited = async () =>
      (
        await fx.stateQuery<{ kind: string; rotation_id: string }>(
          `SELECT kind, rotation_id::text FROM pgrotate.audit_events
            WHERE account = 'down' AND kind = ANY($1::text[]) ORDER BY id`,
          [steps],
        )
      ).rows.map((r) => `${r.kind} ${r.rotation_id}`);

    // Nothing listens on the port: the built CLI rotates, tries, and gives its deliveries 10 s.
    const t0 = Date.now();
    const first = await fx.cliProcess(['--config', path, 'rotate', 'down'], env);
    const elapsed = Date.now() - t0;
    expect(first.code, first.stderr).toBe(0);
    expect(elapsed).toBeLessThan(14_000);
    expect(first.stderr).toMatch(/still in the outbox at shutdown/);
    const firstRotation = await audited();
    expect(firstRotation.length).toBeGreaterThanOrEqual(3);
    const left = await fx.stateQuery<{ event: string; attempts: number; last_error: string }>(
      `SELECT event, attempts, last_error FROM pgrotate.webhook_outbox
        WHERE account = 'down' AND delivered_at IS NULL ORDER BY id`,
    );
    expect(left.rows).toHaveLength(firstRotation.length);
    expect(left.rows[0]?.attempts).toBeGreaterThan(1);
    // Only the head of the account's queue was tried: the ones behind it wait their turn.
    expect(left.rows.slice(1).every((r) => r.attempts === 0)).toBe(true);

    const rx = await startWebhookReceiver([], { port });
    const delivered = () =>
      rx.received.map((r) => {
        const b = json(r);
        return `${String(b.event)} ${String(b.rotationId)}`;
      });
    try {
      // Once what was left is due again, any later command sends all of it before it exits, even
      // one that queues nothing itself (status).
      await fx.stateQuery(`UPDATE pgrotate.webhook_outbox SET next_attempt_at = now() WHERE account = 'down'`);
      const status = await fx.cliProcess(['--config', path, 'status'], env);
      expect(status.code, status.stderr).toBe(0);
      expect(delivered()).toEqual(firstRotation);

      // A second rotation, by a new process: its events go out behind the first rotation's.
      const second = await fx.cliProcess(['--config', path, 'rotate', 'down'], env);
      expect(second.code, second.stderr).toBe(0);
      const all = await audited();
      expect(all.length).toBe(2 * firstRotation.length);
      expect(new Set(all.map((e) => e.split(' ')[1])).size).toBe(2);
      expect(delivered()).toEqual(all);
      expect(new Set(rx.received.map((r) => json(r).id)).size).toBe(all.length);
      const undelivered = await fx.stateQuery(
        `SELECT 1 FROM pgrotate.webhook_outbox WHERE account = 'down' AND delivered_at IS NULL`,
      );
      expect(undelivered.rowCount).toBe(0);
      const pw = await currentPassword('pg/down');
      for (const r of rx.received) expect(r.body).not.toContain(pw);
    } finally {
      await rx.close();
    }
  });
});

describe('a webhook that keeps failing', () => {
  it('is shown by status and the metrics, and told once to a healthy webhook', async () => {
    const bad = await startWebhookReceiver([503]);
    const good = await startWebhookReceiver();
    try {
      const role = await fx.createRole(`wo_fail_${fx.suffix}`, { password: 'initial-outbox-password-3' });
      const { path, env } = fx.writeConfig({
        accounts: [{ name: 'flaky', target: 'main', role, provider: 'local', secret: 'pg/flaky' }],
        extra: {
          alerts: {
            ...FAST,
            attempts: 2,
            failAfter: '1s',
            webhooks: [
              { url: bad.url, events: ['rotation.succeeded'] },
              { url: good.url, events: ['webhook.failing'] },
            ],
          },
        },
      });
      const run = await fx.cli(['--config', path, 'rotate', 'flaky'], env);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/webhook delivery failing/);
      expect(bad.received.length).toBeGreaterThanOrEqual(2);
      expect(bad.received.every((r) => r.status === 503)).toBe(true);

      const status = await fx.cli(['--config', path, 'status', '--json'], env);
      expect(status.code, status.stderr).toBe(0);
      const doc = JSON.parse(status.stdout) as { webhooks?: Array<Record<string, unknown>> };
      expect(doc.webhooks).toEqual([
        expect.objectContaining({ webhook: bad.url, pending: 1, failing: 1, lastError: 'HTTP 503' }),
      ]);
      const text = await fx.cli(['--config', path, 'status'], env);
      expect(text.stdout).toContain(`webhook ${bad.url}: 1 undelivered, 1 failing since`);

      // /metrics' gauges, from the same outbox.
      const redactor = new Redactor();
      const app = await createApp(loadConfigFile(path, env), {
        redactor,
        log: createLogger(redactor, { destination: new PassThrough() }),
        env,
      });
      try {
        const metrics = new PgrotateMetrics({
          registry: new Registry(),
          state: app.state,
          config: app.config,
          queueDepth: async () => 0,
          webhooks: () => app.alerts.backlog(),
        });
        const rendered = await metrics.render();
        expect(rendered).toContain(`pgrotate_webhook_deliveries_failing{webhook="${bad.url}"} 1`);
        expect(rendered).toContain(`pgrotate_webhook_deliveries_pending{webhook="${bad.url}"} 1`);
      } finally {
        await app.close({ by: Date.now() + 1000 });
      }

      // Three processes tried the failing delivery; the healthy webhook heard of it once.
      expect(bad.received.length).toBeGreaterThan(2);
      const told = good.received.map(json);
      expect(told.map((b) => b.event)).toEqual(['webhook.failing']);
      expect(told[0]).toMatchObject({ detail: { webhook: bad.url, event: 'rotation.succeeded', account: 'flaky' } });
      const pw = await currentPassword('pg/flaky');
      for (const r of [...bad.received, ...good.received]) expect(r.body).not.toContain(pw);
    } finally {
      await bad.close();
      await good.close();
    }
  });
});
