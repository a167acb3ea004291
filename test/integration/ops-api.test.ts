import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { createApp, type App } from '../../src/app/app-context.js';
import { loadConfigFile } from '../../src/app/load-config.js';
import { startHttpServer, type RunningHttpServer } from '../../src/entry/http/http-server.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// The HTTP API end to end on PostgreSQL 15: token auth and scopes (each refusal audited, never
// the token), request validation, rotation and offboarding through the API, and /metrics.

const OPS_TOKEN = 'ops-token-0123456789abcdef';
const HR_TOKEN = 'hr-token-0123456789abcdef';
const WRONG_TOKEN = 'wrong-token-0123456789abcdef';

let fx: PgFixture;
let app: App;
let server: RunningHttpServer;
let logs = '';
let cfg: { path: string; env: NodeJS.ProcessEnv };
let appRole: string;
let hrRole: string;

async function call(
  method: string,
  path: string,
  opts: { token?: string; body?: string; headers?: Record<string, string> } = {},
) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...opts.headers,
    },
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  const text = await res.text();
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // /metrics is text
  }
  return { status: res.status, text, json };
}

async function auditRows(
  kind: string,
): Promise<Array<{ actor: string | null; detail: Record<string, unknown>; account: string | null }>> {
  const res = await fx.stateQuery(
    'SELECT actor, detail, account FROM pgrotate.audit_events WHERE kind = $1 ORDER BY id',
    [kind],
  );
  return res.rows as Array<{ actor: string | null; detail: Record<string, unknown>; account: string | null }>;
}

async function allAuditText(): Promise<string> {
  const res = await fx.stateQuery('SELECT * FROM pgrotate.audit_events');
  return JSON.stringify(res.rows);
}

function metricValue(text: string, series: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : null;
}

beforeAll(async () => {
  fx = await createPgFixture(pgServer('pg15'));
  // Offboarding with terminateSessions needs the rotator to be able to end sessions.
  const su = await fx.superClient();
  await su.query(`GRANT pg_signal_backend TO ${fx.rotator}`);
  await su.end();
  appRole = await fx.createRole(`api_app_${fx.suffix}`, { password: 'initial-app-password-1' });
  hrRole = await fx.createRole(`api_hr_${fx.suffix}`, { password: 'initial-hr-password-1' });
  cfg = fx.writeConfig({
    accounts: [
      { name: 'app', target: 'main', role: appRole, provider: 'local', secret: 'pg/app', exposedTo: ['alice'] },
      { name: 'payroll', target: 'main', role: hrRole, provider: 'local', secret: 'pg/payroll', exposedTo: ['bob'] },
    ],
    extra: {
      http: {
        listen: '127.0.0.1:0',
        tokens: [
          { name: 'ops', token: 'env:TEST_OPS_TOKEN', actions: ['read', 'rotate'] },
          { name: 'hr-system', token: 'env:TEST_HR_TOKEN', actions: ['offboard'] },
        ],
      },
    },
  });
  cfg.env = { ...cfg.env, TEST_OPS_TOKEN: OPS_TOKEN, TEST_HR_TOKEN: HR_TOKEN };
  const redactor = new Redactor();
  const sink = new PassThrough();
  sink.on('data', (d: Buffer) => (logs += d.toString()));
  app = await createApp(loadConfigFile(cfg.path, cfg.env), {
    redactor,
    log: createLogger(redactor, { destination: sink, level: 'debug' }),
    env: cfg.env,
  });
  server = await startHttpServer({ app });
});

afterAll(async () => {
  await server?.close();
  await app?.close();
  await fx?.cleanup();
});

describe('HTTP API', () => {
  it('health and readiness need no token', async () => {
    expect(await call('GET', '/healthz')).toMatchObject({ status: 200, json: { status: 'ok' } });
    expect(await call('GET', '/readyz')).toMatchObject({
      status: 200,
      json: { status: 'ready', checks: { state: 'ok' } },
    });
    expect((await call('GET', '/nope')).status).toBe(404);
    expect((await call('DELETE', '/v1/accounts')).status).toBe(405);
  });

  it('no token and a wrong token get 401, a token without the action 403; each is audited without the token', async () => {
    const none = await call('GET', '/v1/accounts');
    expect(none.status).toBe(401);
    const wrong = await call('POST', '/v1/accounts/app/rotate', { token: WRONG_TOKEN, body: '{}' });
    expect(wrong.status).toBe(401);
    const malformed = await call('GET', '/v1/accounts', { headers: { authorization: 'Basic abc' } });
    expect(malformed.status).toBe(401);
    const forbidden = await call('GET', '/v1/accounts', { token: HR_TOKEN });
    expect(forbidden.status).toBe(403);
    const forbiddenRotate = await call('POST', '/v1/accounts/app/rotate', { token: HR_TOKEN, body: '{"reason":"x"}' });
    expect(forbiddenRotate.status).toBe(403);
    const offboardAsOps = await call('POST', '/v1/offboard', { token: OPS_TOKEN, body: '{"principal":"alice"}' });
    expect(offboardAsOps.status).toBe(403);

    const unauthorized = await auditRows('api.unauthorized');
    expect(unauthorized.map((e) => e.detail.reason)).toEqual(['missing', 'unknown', 'malformed']);
    expect(unauthorized[1]?.detail).toMatchObject({ method: 'POST', path: '/v1/accounts/app/rotate' });
    const refused = await auditRows('api.forbidden');
    expect(refused.map((e) => [e.actor, e.detail.tokenName, e.detail.action])).toEqual([
      ['api:hr-system', 'hr-system', 'read'],
      ['api:hr-system', 'hr-system', 'rotate'],
      ['api:ops', 'ops', 'offboard'],
    ]);
    const everything = (await allAuditText()) + logs;
    for (const t of [OPS_TOKEN, HR_TOKEN, WRONG_TOKEN]) expect(everything).not.toContain(t);
    // Nothing was rotated by a refused call.
    expect(await new FileProvider({ name: 'local', path: fx.secretsFile }).getCurrent('pg/app')).toBeNull();
  });

  it('rejects bad JSON, unknown fields, wrong types, oversized bodies and unknown accounts with 4xx, and keeps serving', async () => {
    const bad = await call('POST', '/v1/accounts/app/rotate', { token: OPS_TOKEN, body: '{"reason": ' });
    expect(bad).toMatchObject({ status: 400, json: { error: 'request body is not valid JSON' } });
    const unknown = await call('POST', '/v1/accounts/app/rotate', {
      token: OPS_TOKEN,
      body: '{"reason":"r","force":true}',
    });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.json)).toContain('force');
    const wrongType = await call('POST', '/v1/accounts/app/rotate', {
      token: OPS_TOKEN,
      body: '{"terminateSessions":"yes"}',
    });
    expect(wrongType.status).toBe(400);
    const notObject = await call('POST', '/v1/offboard', { token: HR_TOKEN, body: '[1,2]' });
    expect(notObject.status).toBe(400);
    const noPrincipal = await call('POST', '/v1/offboard', { token: HR_TOKEN, body: '{}' });
    expect(noPrincipal.status).toBe(400);
    const huge = await call('POST', '/v1/accounts/app/rotate', {
      token: OPS_TOKEN,
      body: JSON.stringify({ reason: 'x'.repeat(20_000) }),
    });
    expect(huge.status).toBe(413);
    const text = await call('POST', '/v1/accounts/app/rotate', {
      token: OPS_TOKEN,
      body: 'reason=x',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).toBe(400);
    const missing = await call('POST', '/v1/accounts/no-such-account/rotate', { token: OPS_TOKEN, body: '{}' });
    expect(missing.status).toBe(404);
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect(await new FileProvider({ name: 'local', path: fx.secretsFile }).getCurrent('pg/app')).toBeNull();
  });

  it('rotates through the API: the new password logs in, the requester and reason are in the history, and metrics move', async () => {
    const before = (await call('GET', '/metrics')).text;
    expect(metricValue(before, 'pgrotate_rotations_total{outcome="succeeded",target="main"}')).toBeNull();
    expect(before).toContain('# TYPE pgrotate_rotation_duration_seconds histogram');
    expect(metricValue(before, 'pgrotate_failed_accounts')).toBe(0);

    const res = await call('POST', '/v1/accounts/app/rotate', {
      token: OPS_TOKEN,
      body: JSON.stringify({ reason: 'ticket SEC-42' }),
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json?.result).toMatchObject({ account: 'app', outcome: 'succeeded', role: appRole });
    const current = await new FileProvider({ name: 'local', path: fx.secretsFile }).getCurrent('pg/app');
    expect(current?.username).toBe(appRole);
    expect(await fx.canLogin(appRole, current?.password as string)).toBe(true);
    expect(await fx.canLogin(appRole, 'initial-app-password-1')).toBe(false);

    const history = await fx.cli(['--config', cfg.path, 'history', 'app', '--json'], cfg.env);
    const events = (
      JSON.parse(history.stdout) as { events: Array<{ kind: string; actor: string; detail: Record<string, unknown> }> }
    ).events;
    expect(events.find((e) => e.kind === 'rotation.requested')).toMatchObject({
      actor: 'api:ops',
      detail: { via: 'api', reason: 'ticket SEC-42' },
    });
    expect(events.find((e) => e.kind === 'rotation.started')).toMatchObject({
      actor: 'api:ops',
      detail: { reason: 'ticket SEC-42' },
    });
    expect(events.map((e) => e.kind)).toContain('rotation.succeeded');
    expect(history.stdout).not.toContain(current?.password as string);

    const after = (await call('GET', '/metrics')).text;
    expect(metricValue(after, 'pgrotate_rotations_total{outcome="succeeded",target="main"}')).toBe(1);
    expect(metricValue(after, 'pgrotate_rotation_duration_seconds_count{outcome="succeeded"}')).toBe(1);
    expect(metricValue(after, 'pgrotate_credential_age_seconds{account="app"}')).toBeLessThan(60);
    expect(metricValue(after, 'pgrotate_next_due_timestamp_seconds{account="app"}')).toBeGreaterThan(
      Date.now() / 1000 + 80 * 86_400,
    );
    expect(metricValue(after, 'pgrotate_overdue_accounts')).toBe(0);
    // Bounded labels: account names only, never a rotation id, never a secret.
    expect(after).not.toContain(res.json?.result && (res.json.result as { rotationId: string }).rotationId);
    expect(after).not.toContain(current?.password as string);
    expect(logs).not.toContain(current?.password as string);
  });

  it('lists accounts in the status --json shape for a token with read', async () => {
    const res = await call('GET', '/v1/accounts', { token: OPS_TOKEN });
    expect(res.status).toBe(200);
    const cli = await fx.cli(['--config', cfg.path, 'status', '--json'], cfg.env);
    expect(res.json).toEqual(JSON.parse(cli.stdout));
    expect(res.json?.accounts).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'app', lastStatus: 'succeeded', activeRole: appRole })]),
    );
  });

  it('offboards a principal through the API: their account is rotated, the other is not, and it is audited as api:<token>', async () => {
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    const appBefore = await provider.getCurrent('pg/app');
    const res = await call('POST', '/v1/offboard', {
      token: HR_TOKEN,
      body: JSON.stringify({ principal: 'bob', terminateSessions: true }),
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ principal: 'bob', rotated: ['payroll'], failed: [], sessionsEnded: 0 });
    const payroll = await provider.getCurrent('pg/payroll');
    expect(await fx.canLogin(hrRole, payroll?.password as string)).toBe(true);
    expect(await fx.canLogin(hrRole, 'initial-hr-password-1')).toBe(false);
    expect((await provider.getCurrent('pg/app'))?.rotationId).toBe(appBefore?.rotationId);
    expect(await auditRows('offboard.requested')).toEqual([
      expect.objectContaining({
        actor: 'api:hr-system',
        detail: expect.objectContaining({ principal: 'bob', accounts: ['payroll'] }),
      }),
    ]);
    expect(await auditRows('offboard.completed')).toEqual([
      expect.objectContaining({
        actor: 'api:hr-system',
        detail: expect.objectContaining({ rotated: ['payroll'], failed: [] }),
      }),
    ]);
    const started = (await auditRows('rotation.started')).filter((e) => e.account === 'payroll');
    expect(started).toEqual([
      expect.objectContaining({
        actor: 'api:hr-system',
        detail: expect.objectContaining({ reason: 'offboarding bob', terminateSessions: true }),
      }),
    ]);
    expect(await allAuditText()).not.toContain(payroll?.password as string);
  });

  it('a flood of refused calls writes at most 60 audit events a minute, the rest only to the log', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 70 }, () => call('GET', '/v1/accounts', { token: WRONG_TOKEN }).then((r) => r.status)),
    );
    expect(new Set(statuses)).toEqual(new Set([401]));
    const audited = (await auditRows('api.unauthorized')).length + (await auditRows('api.forbidden')).length;
    expect(audited).toBe(60);
    expect(logs).toContain('audit rate limit reached');
    expect(logs).not.toContain(WRONG_TOKEN);
    expect((await call('GET', '/healthz')).status).toBe(200);
  });

  it('the Authorization scheme is case-insensitive (RFC 9110 §11.1): bearer and BEARER work like Bearer', async () => {
    for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
      const res = await call('GET', '/v1/accounts', { headers: { authorization: `${scheme} ${OPS_TOKEN}` } });
      expect(res.status, `${scheme}: ${res.text}`).toBe(200);
    }
    // The token itself stays case-sensitive.
    expect(
      (await call('GET', '/v1/accounts', { headers: { authorization: `bearer ${OPS_TOKEN.toUpperCase()}` } })).status,
    ).toBe(401);
  });

  it('offboarding a principal nobody names is 404 naming it, changes nothing and is not recorded as an offboarding; allowNone accepts it', async () => {
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    const before = [await provider.getCurrent('pg/app'), await provider.getCurrent('pg/payroll')].map(
      (v) => v?.rotationId,
    );
    const requestedBefore = (await auditRows('offboard.requested')).length;
    const typo = await call('POST', '/v1/offboard', { token: HR_TOKEN, body: JSON.stringify({ principal: 'alcie' }) });
    expect(typo.status, typo.text).toBe(404);
    expect(typo.json?.error).toMatch(/unknown principal "alcie"/);
    for (const principal of ['', '   ']) {
      const blank = await call('POST', '/v1/offboard', { token: HR_TOKEN, body: JSON.stringify({ principal }) });
      expect(blank.status, blank.text).toBe(404);
      expect(blank.json?.error).toMatch(/principal is empty/);
    }
    const blankAllowed = await call('POST', '/v1/offboard', {
      token: HR_TOKEN,
      body: JSON.stringify({ principal: '', allowNone: true }),
    });
    expect(blankAllowed.status).toBe(404);
    expect((await auditRows('offboard.requested')).length).toBe(requestedBefore);

    const allowed = await call('POST', '/v1/offboard', {
      token: HR_TOKEN,
      body: JSON.stringify({ principal: 'alcie', allowNone: true }),
    });
    expect(allowed.status, allowed.text).toBe(200);
    expect(allowed.json).toMatchObject({ principal: 'alcie', rotated: [], failed: [] });
    expect(
      [await provider.getCurrent('pg/app'), await provider.getCurrent('pg/payroll')].map((v) => v?.rotationId),
    ).toEqual(before);
  });
});
