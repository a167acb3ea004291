import { parse as parsePgUrl } from 'pg-connection-string';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/app/load-config.js';
import { ConfigError, SecretFormatError } from '../../src/core/errors.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import {
  combinedSecretTemplate,
  parseTemplate,
  renderSecretTemplate,
  renderTemplate,
  type TemplateValues,
} from '../../src/core/provider/secret-template.js';
import { makeHarness, type Harness } from './fakes/engine-harness.js';
import { credential, everythingRecorded, livePassword } from './fakes/scenario.js';

// secretTemplate: the renderer (every placeholder position, a password with every symbol), the
// config checks (unknown placeholder, owned key, defaults combined with an account's map) and the
// engine over the fakes (both strategies, pending and promoted values, kept keys, redaction).

const DATABASE_URL = 'postgresql://{username}:{password}@{host}:{port}/{dbname}?sslmode=verify-full';
const JDBC_URL = 'jdbc:postgresql://{host}:{port}/{dbname}?user={username}&password={password}';
/** Every printable ASCII symbol, so each URL delimiter and escape character is in the password. */
const SYMBOLS = `p@ss:w/o?r#d%25&=+ !'()*~[]{}$,;"\`^|<>\\x`;

const values = (over: Partial<TemplateValues> = {}): TemplateValues => ({
  username: 'billing_app',
  password: SYMBOLS,
  host: 'db.example.com',
  port: 5432,
  dbname: 'app',
  ...over,
});

describe('secret template: rendering', () => {
  it('finds each placeholder position from the template text', () => {
    const positions = (t: string) => parseTemplate(t).flatMap((s) => ('name' in s ? [`${s.name}:${s.position}`] : []));
    expect(positions(DATABASE_URL)).toEqual([
      'username:userinfo',
      'password:userinfo',
      'host:host',
      'port:port',
      'dbname:path',
    ]);
    expect(positions(JDBC_URL)).toEqual(['host:host', 'port:port', 'dbname:path', 'username:query', 'password:query']);
    expect(positions('postgres://h/db#{password}')).toEqual(['password:fragment']);
    expect(positions('postgres://h/{dbname}?x=1#f')).toEqual(['dbname:path']);
    expect(positions('postgres://[{host}]:{port}')).toEqual(['host:host', 'port:port']);
    expect(positions('postgres://{host}')).toEqual(['host:host']);
    expect(positions('{password}')).toEqual(['password:raw']);
    expect(positions('host={host} port={port} password={password}')).toEqual(['host:raw', 'port:raw', 'password:raw']);
    // A template starting with a placeholder is not a URL, whatever follows.
    expect(positions('{username}://{password}@h')).toEqual(['username:raw', 'password:raw']);
  });

  it('a DATABASE_URL with a password of every symbol parses back exactly, with new URL and with pg-connection-string', () => {
    const url = renderTemplate(DATABASE_URL, values({ username: 'we@ird:user/x', dbname: 'my app' }));
    const parsed = new URL(url);
    expect(decodeURIComponent(parsed.username)).toBe('we@ird:user/x');
    expect(decodeURIComponent(parsed.password)).toBe(SYMBOLS);
    expect(parsed.hostname).toBe('db.example.com');
    expect(parsed.port).toBe('5432');
    expect(decodeURIComponent(parsed.pathname.slice(1))).toBe('my app');
    expect(parsed.searchParams.get('sslmode')).toBe('verify-full');
    const pg = parsePgUrl(url);
    expect(pg).toMatchObject({
      user: 'we@ird:user/x',
      password: SYMBOLS,
      host: 'db.example.com',
      port: '5432',
      database: 'my app',
    });
    // Percent-encoded: nothing of the password but letters, digits and "-._~" is left as it is.
    expect(url).toContain(':p%40ss%3Aw%2Fo%3Fr%23d%2525%26%3D%2B%20%21%27%28%29%2A~%5B%5D');
  });

  it('a JDBC_URL carries user and password in its query, decoded exactly by a form decoder (a "+" stays a "+")', () => {
    const url = renderTemplate(JDBC_URL, values({ dbname: 'a/b' }));
    expect(url.startsWith('jdbc:postgresql://db.example.com:5432/a%2Fb?user=billing_app&password=')).toBe(true);
    const parsed = new URL(url.slice('jdbc:'.length));
    expect(parsed.searchParams.get('password')).toBe(SYMBOLS);
    expect(parsed.searchParams.get('user')).toBe('billing_app');
    expect([...parsed.searchParams.keys()]).toEqual(['user', 'password']);
  });

  it('hosts: an IPv6 address is bracketed, a socket directory percent-encoded; outside a URL values go in raw', () => {
    expect(renderTemplate(DATABASE_URL, values({ host: '::1', password: 'pw' }))).toBe(
      'postgresql://billing_app:pw@[::1]:5432/app?sslmode=verify-full',
    );
    const socket = renderTemplate('postgresql://{username}@{host}/{dbname}', values({ host: '/var/run/postgresql' }));
    expect(socket).toBe('postgresql://billing_app@%2Fvar%2Frun%2Fpostgresql/app');
    expect(parsePgUrl(socket)).toMatchObject({ host: '/var/run/postgresql', database: 'app', user: 'billing_app' });
    expect(renderTemplate('{password}', values())).toBe(SYMBOLS);
    expect(renderTemplate('{host}:{port}:*:{username}:{password}', values({ password: 'a:b' }))).toBe(
      'db.example.com:5432:*:billing_app:a:b',
    );
    expect(renderTemplate('{{literal}} {port}}}', values())).toBe('{literal} 5432}');
  });

  it('refuses unknown placeholders and stray braces, naming them', () => {
    expect(() => parseTemplate('postgresql://{user}:{password}@h')).toThrow(/unknown placeholder \{user\}/);
    expect(() => parseTemplate('x{password')).toThrow(/unclosed "\{" at character 2/);
    expect(() => parseTemplate('x}')).toThrow(/lone "\}" at character 2/);
  });

  it('an account map goes on top of the defaults: its keys win, null drops a default key', () => {
    const t = combinedSecretTemplate(
      { DATABASE_URL: 'a', JDBC_URL: 'b' },
      { DATABASE_URL: 'c', PGURL: 'd', JDBC_URL: null },
    );
    expect(t).toEqual({ DATABASE_URL: 'c', PGURL: 'd' });
    expect(combinedSecretTemplate(undefined, undefined)).toEqual({});
    expect(Object.keys(renderSecretTemplate({ __proto__: '{port}' } as never, values()))).toEqual([]);
  });

  it('the redactor scrubs the password in the strict percent-encoded form a URL carries', () => {
    const r = new Redactor();
    r.add(SYMBOLS);
    const url = renderTemplate(DATABASE_URL, values());
    expect(r.scrub(`connecting to ${url}`)).toBe(
      'connecting to postgresql://billing_app:[REDACTED]@db.example.com:5432/app?sslmode=verify-full',
    );
    expect(r.scrub(renderTemplate(JDBC_URL, values()))).not.toContain('%40ss');
  });
});

const CONFIG = (accounts: string, defaults = '') => `
state: { url: postgres://rotator@127.0.0.1:5432/pgrotate }
providers: { local: { type: file, path: ./secrets.json } }
targets:
  main: { host: 127.0.0.1, database: app, admin: { username: rotator, password: x-admin-pw } }
defaults:
  schedule: { every: 90d }
${defaults}
accounts:
${accounts}
`;

function configError(text: string): string {
  try {
    parseConfigText(text, {}, 'test.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('secret template: config', () => {
  it('parses per account and in defaults', () => {
    const { config } = parseConfigText(
      CONFIG(
        `  - { name: billing, target: main, role: billing_app, provider: local, secret: s1, secretTemplate: { JDBC_URL: "${JDBC_URL}", PGURL: null } }`,
        `  secretTemplate: { DATABASE_URL: "${DATABASE_URL}" }`,
      ),
      {},
    );
    expect(config.defaults.secretTemplate).toEqual({ DATABASE_URL });
    expect(config.accounts[0]?.secretTemplate).toEqual({ JDBC_URL, PGURL: null });
  });

  it('an unknown placeholder is refused at load, naming the account and the key', () => {
    const msg = configError(
      CONFIG(
        `  - { name: billing, target: main, role: billing_app, provider: local, secret: s1, secretTemplate: { DATABASE_URL: "postgresql://{user}:{password}@{host}/{dbname}" } }`,
      ),
    );
    expect(msg).toContain(
      'accounts[0].secretTemplate.DATABASE_URL: account "billing": secretTemplate key "DATABASE_URL": unknown placeholder {user}',
    );
  });

  it('an unknown placeholder in defaults is refused naming defaults.secretTemplate and the key', () => {
    const msg = configError(
      CONFIG(
        `  - { name: billing, target: main, role: billing_app, provider: local, secret: s1 }`,
        `  secretTemplate: { JDBC_URL: "jdbc:postgresql://{host}/{database}" }`,
      ),
    );
    expect(msg).toContain(
      'defaults.secretTemplate.JDBC_URL: defaults.secretTemplate key "JDBC_URL": unknown placeholder {database}',
    );
  });

  it('a key pgrotate writes itself is refused (account and defaults)', () => {
    const msg = configError(
      CONFIG(
        `  - { name: billing, target: main, role: billing_app, provider: local, secret: s1, secretTemplate: { password: "{password}" } }`,
        `  secretTemplate: { rotatedAt: "{port}" }`,
      ),
    );
    expect(msg).toContain(
      'accounts[0].secretTemplate.password: account "billing": secretTemplate key "password": is a key pgrotate writes itself',
    );
    expect(msg).toContain(
      'defaults.secretTemplate.rotatedAt: defaults.secretTemplate key "rotatedAt": is a key pgrotate writes itself',
    );
  });

  it('a key that is not a name is refused', () => {
    const msg = configError(
      CONFIG(
        `  - { name: billing, target: main, role: billing_app, provider: local, secret: s1, secretTemplate: { "bad key": "{host}" } }`,
      ),
    );
    expect(msg).toContain(
      'accounts[0].secretTemplate.bad key: account "billing": secretTemplate key "bad key": is not a key name',
    );
  });
});

function singleUser(secretTemplate?: Record<string, string | null>, defaults?: Record<string, string>): Harness {
  const h = makeHarness({
    account: { name: 'billing', role: 'billing_app', ...(secretTemplate ? { secretTemplate } : {}) },
    ...(defaults ? { secretTemplate: defaults } : {}),
  });
  h.targets.addRole('billing_app');
  return h;
}

describe('secret template: rotations over the fakes', () => {
  it('single-user: pending and promoted values carry the keys rendered from the new password, rewritten every rotation', async () => {
    const h = singleUser({ JDBC_URL }, { DATABASE_URL, HOSTPORT: '{host}:{port}' });
    const old = credential('billing_app');
    old.extra = { pool_size: 20 };
    await livePassword(h, 'billing_app', old.password);
    h.provider.seed('pg/app', { current: old });
    const seen: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await h.rotate();
      expect(res.outcome, res.error?.message).toBe('succeeded');
      const staged = h.provider.calls.find((c) => c.op === 'stagePending' && c.rotationId === res.rotationId);
      expect(staged).toBeDefined();
      const current = h.provider.peek('pg/app').current;
      if (!current) throw new Error('no current value');
      expect(current.extra).toEqual({
        pool_size: 20,
        DATABASE_URL: renderTemplate(DATABASE_URL, current as TemplateValues),
        HOSTPORT: 'db.example.com:5432',
        JDBC_URL: renderTemplate(JDBC_URL, current as TemplateValues),
      });
      expect(parsePgUrl(current.extra?.DATABASE_URL as string).password).toBe(current.password);
      seen.push(current.extra?.DATABASE_URL as string);
      expect(everythingRecorded(h)).not.toContain(current.password);
      expect(everythingRecorded(h)).not.toContain(encodeURIComponent(current.password));
      h.clearCalls();
    }
    expect(seen[0]).not.toBe(seen[1]);
  });

  it('the staged (pending) value carries the rendered keys before promote, redacted whole while the rotation runs', async () => {
    const h = singleUser({ DATABASE_URL, HOSTPORT: '{host}:{port}' });
    const old = credential('billing_app');
    await livePassword(h, 'billing_app', old.password);
    h.provider.seed('pg/app', { current: old });
    // What the provider holds as pending at the moment of promote.
    const promote = h.provider.promotePending.bind(h.provider);
    let pendingSeen: unknown = null;
    let scrubbed: string[] = [];
    h.provider.promotePending = async (secret: string, rotationId: string) => {
      const pending = h.provider.peek(secret).pending;
      pendingSeen = pending;
      // While the rotation runs, the rendered value is a known secret, whole; a key without the password is not.
      scrubbed = [String(pending?.extra?.DATABASE_URL), 'db.example.com:5432'].map((t) => h.redactor.scrub(`x ${t} y`));
      return promote(secret, rotationId);
    };
    const res = await h.rotate();
    expect(res.outcome, res.error?.message).toBe('succeeded');
    const pending = pendingSeen as { password: string; extra?: Record<string, unknown> } | null;
    expect(pending?.extra?.DATABASE_URL).toBe(
      `postgresql://billing_app:${encodeURIComponent(pending?.password ?? '')}@db.example.com:5432/app?sslmode=verify-full`,
    );
    expect(scrubbed).toEqual(['x [REDACTED] y', 'x db.example.com:5432 y']);
  });

  it('alternating: {username} is the role the new secret points at', async () => {
    const h = makeHarness({
      account: {
        name: 'reports',
        strategy: 'alternating',
        roles: ['reports_a', 'reports_b'],
        gracePeriod: '1h',
        secretTemplate: { DATABASE_URL },
      },
    });
    h.targets.addRole('reports_a');
    h.targets.addRole('reports_b');
    const old = credential('reports_a');
    await livePassword(h, 'reports_a', old.password);
    h.provider.seed('pg/app', { current: old });
    for (const role of ['reports_b', 'reports_a']) {
      const res = await h.rotate();
      expect(res.outcome, res.error?.message).toBe('succeeded');
      const current = h.provider.peek('pg/app').current;
      expect(current?.username).toBe(role);
      expect(parsePgUrl(current?.extra?.DATABASE_URL as string)).toMatchObject({
        user: role,
        password: current?.password,
      });
    }
  });

  it('a key removed from secretTemplate that still holds the password is refused before anything changes, naming secretTemplate', async () => {
    const h = singleUser();
    const old = credential('billing_app');
    old.extra = { DATABASE_URL: renderTemplate(DATABASE_URL, old as TemplateValues) };
    await livePassword(h, 'billing_app', old.password);
    h.provider.seed('pg/app', { current: old });
    const res = await h.rotate();
    expect(res.outcome).toBe('failed');
    expect(res.error).toBeInstanceOf(SecretFormatError);
    expect(res.error?.message).toMatch(/has key\(s\) "DATABASE_URL" holding the current password.*secretTemplate/);
    expect(h.provider.peek('pg/app').current).toEqual(old);
    expect(h.targets.statements().filter((q) => q.startsWith('ALTER ROLE'))).toEqual([]);
  });

  it('a key still in secretTemplate is rewritten, not refused, though the stored one holds the current password', async () => {
    const h = singleUser({ DATABASE_URL });
    const old = credential('billing_app');
    old.extra = { DATABASE_URL: renderTemplate(DATABASE_URL, old as TemplateValues), team: 'payments' };
    await livePassword(h, 'billing_app', old.password);
    h.provider.seed('pg/app', { current: old });
    const res = await h.rotate();
    expect(res.outcome, res.error?.message).toBe('succeeded');
    const current = h.provider.peek('pg/app').current;
    expect(Object.keys(current?.extra ?? {})).toEqual(['team', 'DATABASE_URL']);
    expect(current?.extra?.DATABASE_URL).not.toContain(old.password);
    expect(parsePgUrl(current?.extra?.DATABASE_URL as string).password).toBe(current?.password);
  });
});
