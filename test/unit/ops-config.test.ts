import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/app/load-config.js';
import { TokenAuth } from '../../src/entry/http/token-auth.js';
import { parseListen } from '../../src/entry/http/http-server.js';
import { Redactor } from '../../src/core/logging/redactor.js';

// Config of the operations features (http, alerts, sensitiveTables) and token checks.

const BASE = {
  state: { url: 'postgres://rotator@127.0.0.1:5432/pgrotate' },
  providers: { local: { type: 'file', path: './s.json' } },
  targets: { main: { host: '127.0.0.1', database: 'app', admin: { username: 'rotator', password: 'pw-pw-pw' } } },
};
const ENV = { HR_TOKEN: 'hr-token-from-env-0123456789' };

function parse(extra: Record<string, unknown>) {
  return parseConfigText(JSON.stringify({ ...BASE, ...extra }), ENV);
}

function problem(extra: Record<string, unknown>): string {
  try {
    parse(extra);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a config error');
}

describe('ops config', () => {
  it('accepts http tokens with actions and TLS, alerts with defaults, and sensitive tables', () => {
    const { config, referencedValues } = parse({
      http: {
        listen: '[::1]:9187',
        tokens: [{ name: 'hr-system', token: 'env:HR_TOKEN', actions: ['offboard'] }],
        tls: { certFile: '/c', keyFile: '/k' },
      },
      alerts: { webhooks: [{ url: 'https://hooks.example.com/x' }] },
      targets: { main: { ...BASE.targets.main, sensitiveTables: ['public.customers'] } },
    });
    expect(config.http?.tokens[0]).toEqual({ name: 'hr-system', token: ENV.HR_TOKEN, actions: ['offboard'] });
    expect(referencedValues).toContain(ENV.HR_TOKEN);
    expect(config.alerts).toMatchObject({
      attempts: 6,
      backoff: 1000,
      timeout: 5000,
      queueSize: 1000,
      repeatInterval: 3_600_000,
      overdueAfter: 3_600_000,
    });
    expect(config.alerts?.webhooks[0]).toEqual({
      url: 'https://hooks.example.com/x',
      format: 'json',
      events: ['rotation.failed', 'account.overdue', 'offboard.completed', 'workload.restart-failed'],
    });
    expect(config.targets.main?.sensitiveTables).toEqual(['public.customers']);
  });

  it('names the key path of every mistake', () => {
    expect(problem({ http: { tokens: [{ name: 'x', token: 'short', actions: ['read'] }] } })).toMatch(
      /http\.tokens\[0\]\.token/,
    );
    expect(problem({ http: { tokens: [{ name: 'x', token: 'a-long-enough-token-1', actions: ['delete'] }] } })).toMatch(
      /http\.tokens\[0\]\.actions\[0\]/,
    );
    expect(problem({ http: { tokens: [{ name: 'x', token: 'a-long-enough-token-1', actions: [] }] } })).toMatch(
      /http\.tokens\[0\]\.actions/,
    );
    expect(
      problem({
        http: {
          tokens: [
            { name: 'x', token: 'a-long-enough-token-1', actions: ['read'] },
            { name: 'x', token: 'a-long-enough-token-2', actions: ['read'] },
          ],
        },
      }),
    ).toMatch(/duplicate token name "x"/);
    expect(problem({ http: { listen: 'localhost' } })).toMatch(/http\.listen/);
    expect(problem({ http: { tls: { certFile: '/c' } } })).toMatch(/http\.tls\.keyFile/);
    expect(problem({ alerts: { webhooks: [{ url: 'https://h/x', format: 'teams' }] } })).toMatch(
      /alerts\.webhooks\[0\]\.format/,
    );
    expect(problem({ alerts: { webhooks: [{ url: 'https://h/x', events: ['rotation.exploded'] }] } })).toMatch(
      /alerts\.webhooks\[0\]\.events\[0\]/,
    );
    // Issue 27: any audit event kind is accepted (rotation.succeeded among them); a secret signs requests.
    expect(problem({ alerts: { webhooks: [{ url: 'https://h/x', secret: 'x' }] } })).toMatch(
      /alerts\.webhooks\[0\]\.secret: .*16 characters/,
    );
    expect(problem({ alerts: { retries: 3 } })).toMatch(/alerts\.retries: unknown key/);
    expect(problem({ targets: { main: { ...BASE.targets.main, sensitiveTables: ['customers'] } } })).toMatch(
      /targets\.main\.sensitiveTables\[0\]/,
    );
    // A token value is never echoed in an error.
    expect(problem({ http: { tokens: [{ name: 'x', token: 'env:HR_TOKEN', actions: ['nope'] }] } })).not.toContain(
      ENV.HR_TOKEN,
    );
  });

  it('accepts the alerts example of "Webhooks and events" in docs/operations.md, its secret resolved and redacted', () => {
    const doc = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('### Webhooks and events'));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    expect(yaml).toContain('secret: env:HOOK_SECRET');
    const secret = 'hook-secret-from-env-0123456789';
    const { config, referencedValues } = parseConfigText(
      `${Object.entries(BASE)
        .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
        .join('\n')}\n${yaml}`,
      { ...ENV, HOOK_SECRET: secret },
    );
    expect(config.alerts?.webhooks.map((w) => [w.format, w.secret ?? null, w.events])).toEqual([
      ['json', secret, ['rotation.succeeded', 'rotation.failed']],
      ['cloudevents', null, ['rotation.succeeded', 'webhook.failing']],
    ]);
    expect(config.alerts).toMatchObject({
      backoff: 1000,
      maxBackoff: 300_000,
      attempts: 6,
      failAfter: 900_000,
      pollInterval: 2000,
    });
    expect(referencedValues).toContain(secret);
  });

  it('token checks: bearer only, exact match, scoped actions; tokens registered as secrets', () => {
    const redactor = new Redactor();
    const auth = new TokenAuth(
      [
        { name: 'a', token: 'token-a-0123456789', actions: ['read'] },
        { name: 'b', token: 'token-b-0123456789', actions: ['rotate', 'offboard'] },
      ],
      redactor,
    );
    expect(auth.authenticate(undefined)).toEqual({ ok: false, reason: 'missing' });
    expect(auth.authenticate('Basic dG9rZW4=')).toEqual({ ok: false, reason: 'malformed' });
    expect(auth.authenticate('Bearer token-a-012345678')).toEqual({ ok: false, reason: 'unknown' });
    expect(auth.authenticate('Bearer token-a-0123456789x')).toEqual({ ok: false, reason: 'unknown' });
    const b = auth.authenticate('Bearer token-b-0123456789');
    expect(b.ok && b.name).toBe('b');
    expect(b.ok && [...b.actions]).toEqual(['rotate', 'offboard']);
    expect(redactor.scrub('x token-a-0123456789 y')).toBe('x [REDACTED] y');
  });

  it('parses listen addresses', () => {
    expect(parseListen('127.0.0.1:9187')).toEqual({ host: '127.0.0.1', port: 9187 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(() => parseListen('127.0.0.1:99999')).toThrow(/host:port/);
  });
});
