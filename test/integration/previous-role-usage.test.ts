import { PassThrough } from 'node:stream';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { createApp } from '../../src/app/app-context.js';
import { loadConfigFile } from '../../src/app/load-config.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { ROLE_SESSIONS_SQL } from '../../src/core/pg/role-sessions.js';
import { PgrotateMetrics } from '../../src/services/metrics/pgrotate-metrics.js';
import { startCountingPgProxy } from '../support/counting-pg-proxy.js';
import { freePort } from '../support/free-port.js';
import { eventually, startWorker, testQueue } from '../support/jobs-fixture.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';

// Who still uses the previous login of an alternating account (issue 27), on PostgreSQL 15 with
// the built CLI: `status` shows the sessions of the previous role live, run-due alerts once at 75%
// of the grace, expireWhenUnused ends an unused previous role early, sessions that outlive the
// expiry reach the audit trail once, and the sampling sends one statement per target.

let fx: PgFixture;
let rx: Awaited<ReturnType<typeof startWebhookReceiver>>;
const held: pg.Client[] = [];

beforeAll(async () => {
  fx = await createPgFixture(pgServer('pg15'));
  // client_addr and backend_start of other roles' sessions need pg_read_all_stats (or membership).
  const su = await fx.superClient();
  try {
    await su.query(`GRANT pg_read_all_stats TO ${fx.rotator}`);
  } finally {
    await su.end();
  }
  rx = await startWebhookReceiver();
});

afterAll(async () => {
  for (const c of held) await c.end().catch(() => undefined);
  await rx?.close();
  await fx?.cleanup();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Two roles of an alternating pair, created by the rotator. */
async function pair(name: string): Promise<[string, string]> {
  return [await fx.createRole(`${name}_a_${fx.suffix}`), await fx.createRole(`${name}_b_${fx.suffix}`)];
}

/** Rotate `account` twice, so that its previous role holds a password and is in grace; returns that role's login. */
async function rotateTwice(path: string, env: NodeJS.ProcessEnv, account: string, secret: string) {
  for (let i = 0; i < 2; i++) {
    const run = await fx.cli(['--config', path, 'rotate', account], env);
    expect(run.code, run.stderr).toBe(0);
  }
  const previous = await new FileProvider({ name: 'local', path: fx.secretsFile }).getPrevious(secret);
  expect(previous?.username).toBeTruthy();
  const switched = await fx.stateQuery<{ at: Date }>(
    'SELECT last_rotated_at AS at FROM pgrotate.accounts WHERE name = $1',
    [account],
  );
  return {
    role: previous?.username as string,
    password: previous?.password as string,
    switchedAt: switched.rows[0]!.at,
  };
}

/** A session as `role` that stays open (closed in afterAll or by the test). */
async function hold(role: string, password: string, applicationName: string): Promise<pg.Client> {
  const c = new pg.Client({
    host: fx.server.host,
    port: fx.server.port,
    user: role,
    password,
    database: fx.targetDb,
    application_name: applicationName,
  });
  c.on('error', () => undefined);
  await c.connect();
  held.push(c);
  return c;
}

async function auditEvents(account: string, kind: string) {
  return (
    await fx.stateQuery<{ detail: Record<string, unknown>; at: Date }>(
      'SELECT detail, at FROM pgrotate.audit_events WHERE account = $1 AND kind = $2 ORDER BY id',
      [account, kind],
    )
  ).rows;
}

async function runDue(path: string, env: NodeJS.ProcessEnv) {
  const run = await fx.cliProcess(['--config', path, 'run-due'], env);
  expect(run.code, run.stderr).toBe(0);
  return run;
}

async function untilElapsed(since: Date, ms: number): Promise<void> {
  const wait = since.getTime() + ms - Date.now();
  if (wait > 0) await sleep(wait);
}

describe('previous-role usage', () => {
  it('status shows who uses the previous login; one still-in-use alert at 75% of the grace; sessions that outlive the expiry are audited once', async () => {
    const roles = await pair('use');
    const { path, env } = fx.writeConfig({
      accounts: [
        {
          name: 'billing',
          target: 'main',
          strategy: 'alternating',
          roles,
          gracePeriod: '8s',
          provider: 'local',
          secret: 'pg/billing',
        },
      ],
      // Like the audit findings, the alert is opt-in per webhook (not among the default events).
      extra: { alerts: { webhooks: [{ url: rx.url, format: 'json', events: ['credential.still-in-use'] }] } },
    });
    const prev = await rotateTwice(path, env, 'billing', 'pg/billing');
    await hold(prev.role, prev.password, 'billing-worker');
    await hold(prev.role, prev.password, 'billing-worker');

    const text = await fx.cliProcess(['--config', path, 'status'], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(
      `previous login: account billing: ${prev.role}: 2 sessions, billing-worker from 127.0.0.1`,
    );
    const json = await fx.cliProcess(['--config', path, 'status', '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    const row = (
      JSON.parse(json.stdout) as {
        accounts: Array<{ name: string; previousRole: { oldestBackendStart: unknown } | null }>;
      }
    ).accounts.find((a) => a.name === 'billing');
    expect(row?.previousRole).toMatchObject({
      role: prev.role,
      sessions: 2,
      clients: [{ applicationName: 'billing-worker', clientAddr: '127.0.0.1', sessions: 2 }],
      live: true,
    });
    expect(typeof row?.previousRole?.oldestBackendStart).toBe('string');

    // Before 75% of the grace: sampled (for /metrics below), no alert (checked by its time below).
    await runDue(path, env);
    // /metrics exports the stored sample.
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
      });
      expect(await metrics.render()).toContain('pgrotate_previous_role_sessions{account="billing"} 2');
    } finally {
      await app.close();
    }

    // At and after 75% of the grace: several runs, exactly one alert.
    await untilElapsed(prev.switchedAt, 6000);
    for (let i = 0; i < 3; i++) await runDue(path, env);
    const alerts = rx.received.filter((r) => r.body.includes('credential.still-in-use'));
    expect(alerts).toHaveLength(1);
    const alert = JSON.parse(alerts[0]!.body) as { message: string };
    expect(alert).toMatchObject({ event: 'credential.still-in-use', account: 'billing', target: 'main' });
    expect(alert.message).toContain('2 sessions, billing-worker from 127.0.0.1');
    const stillInUse = await auditEvents('billing', 'credential.still-in-use');
    expect(stillInUse).toHaveLength(1);
    // Not before 75% of the 8 s grace (both times from the state database's clock), whatever
    // this machine's load made of the run-due before it.
    expect(stillInUse[0]!.at.getTime() - prev.switchedAt.getTime()).toBeGreaterThanOrEqual(6000);
    for (const r of rx.received) expect(r.body).not.toContain(prev.password);

    // After the expiry: PostgreSQL refuses new logins, the held sessions stay; audited once.
    await untilElapsed(prev.switchedAt, 8500);
    expect(await fx.canLogin(prev.role, prev.password)).toBe(false);
    await runDue(path, env);
    await runDue(path, env);
    const outlived = await auditEvents('billing', 'credential.sessions-outlived-expiry');
    expect(outlived).toHaveLength(1);
    expect(outlived[0]?.detail).toMatchObject({ role: prev.role, sessions: 2 });
    expect(JSON.stringify(outlived)).not.toContain(prev.password);
  });

  it('expireWhenUnused: an unused previous role gets VALID UNTIL now and its password stops working; the secret stays', async () => {
    const roles = await pair('idle');
    const { path, env } = fx.writeConfig({
      accounts: [
        {
          name: 'idle',
          target: 'main',
          strategy: 'alternating',
          roles,
          gracePeriod: '1h',
          expireWhenUnused: '2s',
          provider: 'local',
          secret: 'pg/idle',
        },
      ],
    });
    const prev = await rotateTwice(path, env, 'idle', 'pg/idle');
    expect(await fx.canLogin(prev.role, prev.password)).toBe(true);
    await untilElapsed(prev.switchedAt, 2200);
    await runDue(path, env);
    const su = await fx.superClient();
    try {
      const r = await su.query<{ until: Date }>('SELECT rolvaliduntil AS until FROM pg_roles WHERE rolname = $1', [
        prev.role,
      ]);
      expect(Math.abs(r.rows[0]!.until.getTime() - Date.now())).toBeLessThan(30_000);
    } finally {
      await su.end();
    }
    expect(await fx.canLogin(prev.role, prev.password)).toBe(false);
    const expired = await auditEvents('idle', 'credential.expired-unused');
    expect(expired).toHaveLength(1);
    expect(expired[0]?.detail).toMatchObject({ role: prev.role, expireWhenUnusedMs: 2000 });
    // A second run neither expires again nor reports outliving sessions (there were none).
    await runDue(path, env);
    expect(await auditEvents('idle', 'credential.expired-unused')).toHaveLength(1);
    expect(await auditEvents('idle', 'credential.sessions-outlived-expiry')).toHaveLength(0);
    // The next rotation gives the expired role a new password and it logs in again.
    const next = await fx.cli(['--config', path, 'rotate', 'idle'], env);
    expect(next.code, next.stderr).toBe(0);
    const current = await new FileProvider({ name: 'local', path: fx.secretsFile }).getCurrent('pg/idle');
    expect(current?.username).toBe(prev.role);
    expect(await fx.canLogin(prev.role, current?.password as string)).toBe(true);
  });

  it('a used previous role is not expired by expireWhenUnused', async () => {
    const roles = await pair('busy');
    const { path, env } = fx.writeConfig({
      accounts: [
        {
          name: 'busy',
          target: 'main',
          strategy: 'alternating',
          roles,
          gracePeriod: '1h',
          expireWhenUnused: '1s',
          provider: 'local',
          secret: 'pg/busy',
        },
      ],
    });
    const prev = await rotateTwice(path, env, 'busy', 'pg/busy');
    const c = await hold(prev.role, prev.password, 'busy-worker');
    await untilElapsed(prev.switchedAt, 1200);
    await runDue(path, env);
    expect(await fx.canLogin(prev.role, prev.password)).toBe(true);
    expect(await auditEvents('busy', 'credential.expired-unused')).toHaveLength(0);
    // The idle window counts from the last sample that saw a session.
    await c.end();
    await runDue(path, env);
    expect(await fx.canLogin(prev.role, prev.password)).toBe(true);
    await sleep(1200);
    await runDue(path, env);
    expect(await fx.canLogin(prev.role, prev.password)).toBe(false);
  });

  it('a worker samples on its ticks: /metrics follows the sessions of the previous role', async () => {
    const roles = await pair('wk');
    const port = await freePort();
    const account = {
      name: 'wk',
      target: 'main',
      strategy: 'alternating',
      roles,
      gracePeriod: '1h',
      provider: 'local',
      secret: 'pg/wk',
    };
    // Rotated in-process first (with a queue configured, `rotate` would enqueue).
    const direct = fx.writeConfig({ accounts: [account] });
    const prev = await rotateTwice(direct.path, direct.env, 'wk', 'pg/wk');
    const c = await hold(prev.role, prev.password, 'wk-worker');
    const { path, env } = fx.writeConfig({
      accounts: [account],
      extra: { queue: testQueue('postgres'), http: { listen: `127.0.0.1:${port}` } },
    });
    const worker = startWorker(fx, path, env);
    const series = async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => null))?.text();
      return /^pgrotate_previous_role_sessions\{account="wk"\} (\d+)$/m.exec(text ?? '')?.[1];
    };
    try {
      await eventually(async () => (await series()) === '1', `one session in /metrics: ${worker.output()}`, 30_000);
      await c.end();
      await eventually(async () => (await series()) === '0', 'no session in /metrics', 30_000);
    } finally {
      const exit = await worker.stop();
      expect(exit.code, worker.output()).toBe(0);
    }
  });

  it('without pg_read_all_stats, status still counts the sessions and names the application, with no address', async () => {
    const plain = await createPgFixture(pgServer('pg15'));
    try {
      const roles: [string, string] = [
        await plain.createRole(`np_a_${plain.suffix}`),
        await plain.createRole(`np_b_${plain.suffix}`),
      ];
      const { path, env } = plain.writeConfig({
        accounts: [
          {
            name: 'np',
            target: 'main',
            strategy: 'alternating',
            roles,
            gracePeriod: '1h',
            provider: 'local',
            secret: 'pg/np',
          },
        ],
      });
      for (let i = 0; i < 2; i++) expect((await plain.cli(['--config', path, 'rotate', 'np'], env)).code).toBe(0);
      const prev = await new FileProvider({ name: 'local', path: plain.secretsFile }).getPrevious('pg/np');
      const c = new pg.Client({
        host: plain.server.host,
        port: plain.server.port,
        user: prev?.username as string,
        password: prev?.password as string,
        database: plain.targetDb,
        application_name: 'np-worker',
      });
      await c.connect();
      try {
        const json = await plain.cliProcess(['--config', path, 'status', '--json'], env);
        expect(json.code, json.stderr).toBe(0);
        const row = (
          JSON.parse(json.stdout) as { accounts: Array<{ name: string; previousRole: Record<string, unknown> | null }> }
        ).accounts.find((a) => a.name === 'np');
        expect(row?.previousRole).toMatchObject({
          role: prev?.username,
          sessions: 1,
          clients: [{ applicationName: 'np-worker', clientAddr: null, sessions: 1 }],
          oldestBackendStart: null,
        });
        const text = await plain.cliProcess(['--config', path, 'status'], env);
        expect(text.stdout).toContain(`account np: ${prev?.username}: 1 session, np-worker (expires`);
      } finally {
        await c.end();
      }
    } finally {
      await plain.cleanup();
    }
  });

  it('refuses expireWhenUnused on a single-user account and one not shorter than gracePeriod, naming the account', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [
        {
          name: 'solo',
          target: 'main',
          role: `solo_${fx.suffix}`,
          expireWhenUnused: '1h',
          provider: 'local',
          secret: 'pg/solo',
        },
        /account "solo": expireWhenUnused applies to alternating accounts only/,
      ],
      [
        {
          name: 'long',
          target: 'main',
          strategy: 'alternating',
          roles: [`long_a_${fx.suffix}`, `long_b_${fx.suffix}`],
          gracePeriod: '1h',
          expireWhenUnused: '1h',
          provider: 'local',
          secret: 'pg/long',
        },
        /account "long": expireWhenUnused must be shorter than gracePeriod/,
      ],
    ];
    for (const [account, message] of cases) {
      const { path, env } = fx.writeConfig({ accounts: [account] });
      const run = await fx.cliProcess(['--config', path, 'run-due'], env);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(message);
    }
  });

  it('sends one sampling statement per target, for 1 and for 3 accounts in grace', async () => {
    const proxy = await startCountingPgProxy({ host: fx.server.host, port: fx.server.port });
    try {
      const accounts = [];
      for (const n of ['c1', 'c2', 'c3'])
        accounts.push({
          name: n,
          target: 'main',
          strategy: 'alternating',
          roles: await pair(n),
          gracePeriod: '1h',
          provider: 'local',
          secret: `pg/${n}`,
        });
      const sql = ROLE_SESSIONS_SQL.replace(/\s+/g, ' ');
      for (const count of [1, 3]) {
        const { path, env } = fx.writeConfig({ accounts: accounts.slice(0, count), targetExtra: { port: proxy.port } });
        if (count === 1) await rotateTwice(path, env, 'c1', 'pg/c1');
        else for (const n of ['c2', 'c3']) await rotateTwice(path, env, n, `pg/${n}`);
        proxy.reset();
        await runDue(path, env);
        await sleep(100);
        const sampling = proxy.statements.filter((s) => s.text.replace(/\s+/g, ' ') === sql);
        expect(sampling, `${count} accounts`).toHaveLength(1);
      }
    } finally {
      await proxy.close();
    }
  });
});
