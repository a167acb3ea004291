import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { startOverdueWatcher } from '../../src/core/alerts/overdue-watcher.js';
import { createApp } from '../../src/app/app-context.js';
import { loadConfigFile } from '../../src/app/load-config.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { PgrotateMetrics } from '../../src/services/metrics/pgrotate-metrics.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';

// Alerts from real rotations on PostgreSQL 15: a failed rotation, a finished offboarding and an
// overdue account each reach a local webhook receiver, and no payload carries a password.

let fx: PgFixture;
let rx: Awaited<ReturnType<typeof startWebhookReceiver>>;

beforeAll(async () => {
  fx = await createPgFixture(pgServer('pg15'));
  rx = await startWebhookReceiver([500, 200]);
});

afterAll(async () => {
  await rx?.close();
  await fx?.cleanup();
});

describe('alerts from rotations', () => {
  it('a failed rotation and a finished offboarding reach the webhook (after a retry); an overdue account too; nothing secret in them', async () => {
    const role = await fx.createRole(`al_app_${fx.suffix}`, { password: 'initial-alert-password-1' });
    const { path, env } = fx.writeConfig({
      accounts: [
        { name: 'app', target: 'main', role, provider: 'local', secret: 'pg/app', exposedTo: ['carol'] },
        { name: 'ghost', target: 'main', role: `missing_${fx.suffix}`, provider: 'local', secret: 'pg/ghost' },
      ],
      extra: { alerts: { webhooks: [{ url: rx.url, format: 'json' }], backoff: '1s' } },
    });

    const failed = await fx.cli(['--config', path, 'rotate', 'ghost'], env);
    expect(failed.code).toBe(1);
    // The CLI waits (bounded) for queued alerts before it exits: the first try got 500, the retry 200.
    expect(rx.received.map((r) => r.status)).toEqual([500, 200]);
    const failure = JSON.parse(rx.received[1]?.body ?? '{}') as Record<string, unknown>;
    expect(failure).toMatchObject({
      event: 'rotation.failed',
      account: 'ghost',
      target: 'main',
      detail: { errorType: 'RoleNotFoundError' },
    });
    expect(String(failure.message)).toMatch(/does not exist on target main/);

    const off = await fx.cli(['--config', path, 'offboard', 'carol'], env);
    expect(off.code, off.stderr).toBe(0);
    const offboard = JSON.parse(rx.received[2]?.body ?? '{}') as Record<string, unknown>;
    expect(offboard).toMatchObject({
      event: 'offboard.completed',
      detail: { principal: 'carol', rotated: ['app'], failed: [] },
    });
    const current = await new FileProvider({ name: 'local', path: fx.secretsFile }).getCurrent('pg/app');
    expect(await fx.canLogin(role, current?.password as string)).toBe(true);

    // Overdue: the account's due time passed two hours ago.
    const redactor = new Redactor();
    const app = await createApp(loadConfigFile(path, env), {
      redactor,
      log: createLogger(redactor, { destination: new PassThrough() }),
      env,
    });
    try {
      await fx.stateQuery(`UPDATE pgrotate.accounts SET next_due_at = now() - interval '2 hours' WHERE name = 'app'`);
      const registry = new Registry();
      const metrics = new PgrotateMetrics({
        registry,
        state: app.state,
        config: app.config,
        queueDepth: async () => 7,
      });
      const text = await metrics.render();
      expect(text).toContain('pgrotate_overdue_accounts 1');
      expect(text).toContain('pgrotate_failed_accounts 1');
      expect(text).toContain('pgrotate_queue_depth 7');
      const watcher = startOverdueWatcher({
        state: app.state,
        config: app.config,
        alerts: app.alerts,
        log: app.log,
        intervalMs: 60_000,
      });
      await rx.waitFor(4);
      watcher.stop();
    } finally {
      await app.close();
    }
    const overdue = JSON.parse(rx.received[3]?.body ?? '{}') as Record<string, unknown>;
    expect(overdue).toMatchObject({ event: 'account.overdue', account: 'app', target: 'main' });
    expect(rx.received).toHaveLength(4);

    for (const r of rx.received) {
      for (const secret of [current?.password as string, fx.rotatorPassword, 'initial-alert-password-1'])
        expect(r.body).not.toContain(secret);
    }
  });
});
