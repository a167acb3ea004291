import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Finding } from '../../src/core/audit/audit-types.js';
import { freePort } from '../support/free-port.js';
import { eventually, startWorker } from '../support/jobs-fixture.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { startPgServer, stopPgServer, type PgServerInfo } from '../support/pg-server.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';

// Issue 18 (1, 2, 5): a worker left running audits its target on a schedule and raises one
// webhook per new finding (a role made superuser, log_statement = 'all' by ALTER SYSTEM, a new
// unmanaged login), none on the run after, and `resolved` when a finding goes away. On a
// PostgreSQL server of its own, so ALTER SYSTEM and new roles touch no other test.

let server: PgServerInfo;
let fx: PgFixture;
let app: string;

interface AlertBody {
  event: string;
  target: string;
  detail: Finding & { runId: string };
}

async function asSuper(...sql: string[]): Promise<void> {
  const c = await fx.superClient();
  try {
    for (const s of sql) await c.query(s);
  } finally {
    await c.end();
  }
}

async function runCount(): Promise<number> {
  const c = await fx.rotatorClient(fx.stateDb);
  try {
    const r = await c
      .query<{ n: number }>('SELECT count(*)::int AS n FROM pgrotate.audit_runs')
      .catch(() => ({ rows: [{ n: 0 }] }));
    return r.rows[0]?.n ?? 0;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  server = startPgServer({
    label: 'drift',
    binDir: '/usr/lib/postgresql/15/bin',
    port: await freePort(),
    settings: { log_statement: 'none' },
  });
  fx = await createPgFixture(server);
  app = await fx.createRole(`app_${fx.suffix}`, { password: 'drift-app-initial-password' });
});

afterAll(async () => {
  await fx?.cleanup();
  if (server) stopPgServer(server);
});

describe('scheduled audit in the worker', () => {
  it('one webhook per new finding within one interval, none on the next run, and resolved when it goes away', async () => {
    const hook = await startWebhookReceiver();
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'app', target: 'main', role: app, provider: 'local', secret: 'pg/app', schedule: 'manual' }],
      extra: {
        audit: { every: '10s' },
        alerts: { webhooks: [{ url: hook.url, events: ['audit.finding.new', 'audit.finding.resolved'] }] },
      },
    });
    const worker = startWorker(fx, path, env);
    const alerts = () => hook.received.map((r) => JSON.parse(r.body) as AlertBody);
    /** Wait for audit run `n` to be stored and its alerts delivered; return the alerts it added. */
    const afterRun = async (n: number): Promise<AlertBody[]> => {
      const before = hook.received.length;
      await eventually(async () => (await runCount()) >= n, `audit run ${n}`, 40_000);
      await new Promise((r) => setTimeout(r, 1500)); // deliveries leave on a later turn of the event loop
      return alerts().slice(before);
    };
    try {
      // The first run: nothing was known before, so every finding is new (one alert each).
      const baseline = await afterRun(1);
      expect(baseline.length).toBeGreaterThan(0);
      expect(new Set(baseline.map((a) => `${a.detail.check}\u0000${a.detail.subject}`)).size).toBe(baseline.length);
      expect(
        baseline.every((a) => a.event === 'audit.finding.new' && a.target === 'main' && a.detail.fix.length > 0),
      ).toBe(true);
      // Nothing changed: the next run says nothing.
      expect(await afterRun(2)).toEqual([]);

      const drifts: Array<{ sql: string[]; check: string; subject: string; severity: string }> = [
        { sql: [`ALTER ROLE ${app} SUPERUSER`], check: 'superuser', subject: app, severity: 'critical' },
        {
          sql: [`ALTER SYSTEM SET log_statement = 'all'`, 'SELECT pg_reload_conf()'],
          check: 'statement-logging',
          subject: 'log_statement',
          severity: 'high',
        },
        {
          sql: [`CREATE ROLE new_${fx.suffix} LOGIN PASSWORD 'drift-new-login-password' VALID UNTIL '2999-01-01'`],
          check: 'unmanaged-login',
          subject: `new_${fx.suffix}`,
          severity: 'low',
        },
      ];
      // One drift per run. Each run's alerts are exactly its own drift's finding, so the run after
      // a drift (the next drift's, and finally the resolving one) repeats nothing.
      let run = 2;
      for (const drift of drifts) {
        await asSuper(...drift.sql);
        const added = await afterRun(++run);
        expect(
          added.map((a) => [a.event, a.detail.check, a.detail.subject, a.detail.severity]),
          drift.check,
        ).toEqual([['audit.finding.new', drift.check, drift.subject, drift.severity]]);
      }
      // A finding that goes away is resolved, once.
      await asSuper(`ALTER ROLE ${app} NOSUPERUSER`);
      const resolved = await afterRun(++run);
      expect(resolved.map((a) => [a.event, a.detail.check, a.detail.subject])).toEqual([
        ['audit.finding.resolved', 'superuser', app],
      ]);
      // No password reached a webhook or the worker's output.
      for (const secret of ['drift-new-login-password', 'drift-app-initial-password', fx.rotatorPassword]) {
        expect(hook.received.map((r) => r.body).join('\n') + worker.output()).not.toContain(secret);
      }
      // The audit trail holds the same story.
      const c = await fx.rotatorClient(fx.stateDb);
      const events = await c.query<{ kind: string; n: number }>(
        `SELECT kind, count(*)::int AS n FROM pgrotate.audit_events WHERE kind LIKE 'audit.finding.%' GROUP BY 1 ORDER BY 1`,
      );
      await c.end();
      expect(events.rows).toEqual([
        { kind: 'audit.finding.new', n: baseline.length + drifts.length },
        { kind: 'audit.finding.resolved', n: 1 },
      ]);
    } finally {
      const exit = await worker.stop();
      await hook.close();
      await asSuper(`ALTER SYSTEM RESET log_statement`, 'SELECT pg_reload_conf()');
      expect(exit.code, worker.output()).toBe(0);
    }
  }, 300_000);

  it('audit --since-last prints only what changed, stores the new baseline, exits 1 on a new finding at --fail-on; the API and metrics serve the last run', async () => {
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'app', target: 'main', role: app, provider: 'local', secret: 'pg/app', schedule: 'manual' }],
      extra: {
        http: {
          listen: `127.0.0.1:${await freePort()}`,
          tokens: [{ name: 'reader', token: 'env:TEST_READ_TOKEN', actions: ['read'] }],
        },
      },
    });
    const envWithToken = { ...env, TEST_READ_TOKEN: 'read-token-0123456789abcdef' };
    // The baseline (the first stored run of this test, or the one after the worker's last run).
    const first = await fx.cli(
      ['--config', path, 'audit', 'main', '--since-last', '--json', '--fail-on', 'critical'],
      envWithToken,
    );
    expect(first.stderr).not.toMatch(/error/i);
    expect(Array.isArray((JSON.parse(first.stdout) as { new: Finding[] }).new)).toBe(true);
    await asSuper(`ALTER ROLE ${app} CREATEDB`);
    const second = await fx.cli(
      ['--config', path, 'audit', 'main', '--since-last', '--fail-on', 'medium'],
      envWithToken,
    );
    expect(second.stdout).toMatch(new RegExp(`New \\(1\\):\\n  \\[MEDIUM\\] privileged-role ${app}: `));
    expect(second.stdout).toMatch(/Resolved \(0\):/);
    expect(second.code).toBe(1);
    // Stored as the baseline: the same state again is no news.
    const third = await fx.cli(
      ['--config', path, 'audit', 'main', '--since-last', '--json', '--fail-on', 'low'],
      envWithToken,
    );
    expect(third.code).toBe(0);
    const thirdRun = JSON.parse(third.stdout) as { runId: string; new: Finding[]; resolved: Finding[] };
    expect(thirdRun.new).toEqual([]);
    await asSuper(`ALTER ROLE ${app} NOCREATEDB`);

    const { spawn } = await import('node:child_process');
    const { CLI } = await import('../support/pg-fixture.js');
    const serve = spawn(process.execPath, [CLI, '--config', path, 'serve'], {
      env: envWithToken,
      cwd: fx.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const listen = (JSON.parse((await import('node:fs')).readFileSync(path, 'utf8')) as { http: { listen: string } })
        .http.listen;
      const base = `http://${listen}`;
      await eventually(
        async () => (await fetch(`${base}/healthz`).catch(() => null))?.status === 200,
        'serve /healthz',
      );
      const auth = { authorization: 'Bearer read-token-0123456789abcdef' };
      const res = await fetch(`${base}/v1/audit/main`, { headers: auth });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { runId: string; report: { target: string; findings: Finding[] } };
      // The newest run (ids compared as numbers: run 12 is newer than run 9).
      expect(body.runId).toBe(thirdRun.runId);
      expect(body.report.target).toBe('main');
      expect(body.report.findings.some((f) => f.check === 'privileged-role' && f.subject === app)).toBe(true);
      expect((await fetch(`${base}/v1/audit/main`)).status).toBe(401);
      expect((await fetch(`${base}/v1/audit/nope`, { headers: auth })).status).toBe(404);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/pgrotate_audit_findings\{target="main",severity="medium"\} [1-9]/);
      expect(metrics).toMatch(/pgrotate_audit_last_run_timestamp_seconds\{target="main"\} \d{10}/);
    } finally {
      serve.kill('SIGTERM');
    }
  }, 120_000);
});
