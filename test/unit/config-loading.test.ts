import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configPath, loadConfigFile, parseConfigText } from '../../src/app/load-config.js';
import { ConfigError } from '../../src/core/errors.js';

const VALID = `
state:
  url: postgres://rotator@127.0.0.1:5432/pgrotate
  password: env:PGROTATE_STATE_PASSWORD
providers:
  local: { type: file, path: ./secrets.json }
targets:
  main:
    host: 127.0.0.1
    database: app
    admin: { username: rotator, password: env:PGROTATE_ADMIN_PASSWORD }
defaults:
  schedule: { every: 90d }
accounts:
  - name: billing-app
    target: main
    role: billing_app
    provider: local
    secret: pg/billing-app
    exposedTo: [alice]
  - name: reports
    target: main
    strategy: alternating
    roles: [reports_a, reports_b]
    gracePeriod: 24h
    provider: local
    secret: pg/reports
`;
const ENV = { PGROTATE_STATE_PASSWORD: 'state-pw-123', PGROTATE_ADMIN_PASSWORD: 'admin-pw-456' };

function errorOf(text: string, env: NodeJS.ProcessEnv = ENV): string {
  try {
    parseConfigText(text, env, 'test.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('parses the brief example with defaults and resolved references', () => {
    const { config, referencedValues } = parseConfigText(VALID, ENV);
    expect(config.targets.main?.port).toBe(5432);
    expect(config.targets.main?.sslmode).toBe('verify-full');
    expect(config.state.password).toBe('state-pw-123');
    expect(config.accounts[0]).toMatchObject({ strategy: 'single-user', role: 'billing_app' });
    expect(config.accounts[1]).toMatchObject({ strategy: 'alternating', gracePeriod: 86_400_000 });
    expect(config.defaults.schedule).toEqual({ every: 90 * 86_400_000 });
    expect(config.defaults.password.length).toBe(32);
    expect(referencedValues).toEqual(expect.arrayContaining(['state-pw-123', 'admin-pw-456']));
  });

  it('reads file: references', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'pw'), 'from-a-file\n');
    const { config } = parseConfigText(VALID.replace('env:PGROTATE_ADMIN_PASSWORD', `file:${join(dir, 'pw')}`), ENV);
    const admin = config.targets.main?.admin;
    expect(typeof admin === 'object' && 'password' in admin ? admin.password : null).toBe('from-a-file');
    expect(errorOf(VALID.replace('env:PGROTATE_ADMIN_PASSWORD', 'file:/nonexistent/pw'))).toMatch(
      /targets\.main\.admin\.password: cannot read file \/nonexistent\/pw \(ENOENT\)/,
    );
  });

  it('trims exactly one trailing newline from a file: reference', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const password = (content: string) => {
      writeFileSync(join(dir, 'pw'), content);
      const admin = parseConfigText(VALID.replace('env:PGROTATE_ADMIN_PASSWORD', `file:${join(dir, 'pw')}`), ENV).config
        .targets.main?.admin;
      return typeof admin === 'object' && 'password' in admin ? admin.password : null;
    };
    expect(password('secret-one\n')).toBe('secret-one');
    expect(password('secret-one\r\n')).toBe('secret-one');
    expect(password('secret-one\n\n')).toBe('secret-one\n');
    expect(password('secret-one')).toBe('secret-one');
  });

  it('refuses a role, database or host name with a NUL, a line break or over 63 bytes, naming the key and never the value', () => {
    const withUser = (user: string) =>
      errorOf(VALID.replace('username: rotator', 'username: env:ADMIN_USER'), { ...ENV, ADMIN_USER: user });
    expect(withUser('rot\u0000ator-secretish')).toMatch(
      /targets\.main\.admin\.username: not a usable role name: contains a NUL character/,
    );
    expect(withUser('rot\nator-secretish')).toMatch(
      /targets\.main\.admin\.username: not a usable role name: contains a line break/,
    );
    expect(withUser('r'.repeat(64))).toMatch(
      /targets\.main\.admin\.username: not a usable role name: 64 bytes, PostgreSQL allows at most 63/,
    );
    // Multi-byte characters count in bytes, as PostgreSQL counts them.
    expect(withUser('é'.repeat(32))).toMatch(/64 bytes/);
    expect(
      parseConfigText(VALID.replace('username: rotator', 'username: env:ADMIN_USER'), {
        ...ENV,
        ADMIN_USER: 'é'.repeat(31),
      }).config.targets.main?.admin,
    ).toBeTruthy();
    for (const msg of [withUser('rot\nator-secretish'), withUser('r'.repeat(64))])
      expect(msg).not.toMatch(/secretish|rrrr/);
    const db = errorOf(VALID.replace('database: app', 'database: env:DB_NAME'), {
      ...ENV,
      DB_NAME: 'line-one-secretish\nline-two',
    });
    expect(db).toMatch(/targets\.main\.database: not a usable database name: contains a line break/);
    expect(db).not.toContain('secretish');
    expect(errorOf(VALID.replace('host: 127.0.0.1', 'host: env:DB_HOST'), { ...ENV, DB_HOST: 'db\u0000host' })).toMatch(
      /targets\.main\.host: not a usable host name: contains a NUL/,
    );
    expect(errorOf(VALID.replace('role: billing_app', `role: ${'b'.repeat(64)}`))).toMatch(
      /accounts\[0\]\.role: not a usable role name/,
    );
    expect(errorOf(VALID.replace('roles: [reports_a, reports_b]', 'roles: [reports_a, "reports\\tb"]'))).toMatch(
      /accounts\[1\]\.roles\[1\]: not a usable role name: contains a control character/,
    );
    expect(
      errorOf(VALID.replace('url: postgres://rotator@127.0.0.1:5432/pgrotate', 'url: env:STATE_URL'), {
        ...ENV,
        STATE_URL: 'postgres://rot%0Aator@127.0.0.1/pgrotate',
      }),
    ).toMatch(/state\.url: not a usable user name in the URL: contains a line break/);
  });

  it('scrubs referenced values from messages that quote what they refuse', () => {
    const msg = errorOf(
      VALID.replace('    target: main\n    role: billing_app', '    target: env:TARGET_NAME\n    role: billing_app'),
      { ...ENV, TARGET_NAME: 'target-from-env-secretish' },
    );
    expect(msg).toMatch(/accounts\[0\]\.target: account "billing-app" names unknown target "\[REDACTED\]"/);
    expect(msg).not.toContain('secretish');
  });

  it('refuses a Vault secret name with ".", ".." or empty segments, or under the pending prefix, naming the key', () => {
    const vault = (secret: string, extra = '') =>
      VALID.replace(
        '  local: { type: file, path: ./secrets.json }',
        `  local: { type: file, path: ./secrets.json }\n  bao: { type: vault, address: http://127.0.0.1:8200, token: t${extra} }`,
      ).replace('    provider: local\n    secret: pg/billing-app', `    provider: bao\n    secret: "${secret}"`);
    for (const bad of ['pg/../admin', 'pg/./x', '..', 'pg//x', '/pg/x', 'pg/x/', ' pg/x']) {
      expect(errorOf(vault(bad)), bad).toMatch(
        /accounts\[0\]\.secret: account "billing-app": secret .* is not a usable Vault path/,
      );
    }
    expect(errorOf(vault('pgrotate-pending/pg/x'))).toMatch(
      /accounts\[0\]\.secret: .*lies under the pending prefix "pgrotate-pending"/,
    );
    expect(errorOf(vault('pend/x', ', pendingPrefix: pend'))).toMatch(/lies under the pending prefix "pend"/);
    expect(
      parseConfigText(vault('pgrotate-pending/pg/x', ', pendingPrefix: pend'), ENV).config.accounts[0]?.secret,
    ).toBe('pgrotate-pending/pg/x');
    expect(parseConfigText(vault('pg/app.v1/..x'), ENV).config.accounts[0]?.secret).toBe('pg/app.v1/..x');
    expect(errorOf(vault('pg/x', ', pendingPrefix: "a//b"'))).toMatch(
      /providers\.bao\.pendingPrefix: empty path segment/,
    );
  });

  it('refuses YAML over 2 MiB before parsing and recommends JSON; JSON of that size is read', () => {
    const filler = `# ${'x'.repeat(1000)}\n`.repeat(2200);
    expect(errorOf(VALID + filler)).toMatch(
      /test\.yaml: config is \d+ bytes of YAML; YAML configs are limited to 2 MiB .*Write a large config as JSON/,
    );
    const groups = Object.fromEntries(
      Array.from({ length: 45_000 }, (_, i) => [`group-${i}`, ['someone-with-a-long-name-0123456789']]),
    );
    const big = JSON.stringify({ state: { url: 'postgres://r@127.0.0.1/s' }, accounts: [], groups });
    expect(big.length).toBeGreaterThan(2 * 1024 * 1024);
    expect(Object.keys(parseConfigText(big, ENV, 'big.json').config.groups)).toHaveLength(45_000);
  });

  it('names the key path of an unknown key', () => {
    expect(errorOf(VALID.replace('    exposedTo: [alice]', '    exposedTo: [alice]\n    rol: typo'))).toMatch(
      /accounts\[0\]\.rol: unknown key/,
    );
    expect(errorOf(VALID.replace('  url:', '  colour: blue\n  url:'))).toMatch(/state\.colour: unknown key/);
  });

  it('names a missing environment reference without echoing values', () => {
    const msg = errorOf(VALID, { PGROTATE_STATE_PASSWORD: 'state-pw-123' });
    expect(msg).toMatch(/targets\.main\.admin\.password: environment variable PGROTATE_ADMIN_PASSWORD is not set/);
    expect(msg).not.toContain('state-pw-123');
  });

  it('names unknown targets and providers, duplicate names and bad durations', () => {
    expect(errorOf(VALID.replace('    target: main\n    role:', '    target: nowhere\n    role:'))).toMatch(
      /accounts\[0\]\.target: account "billing-app" names unknown target "nowhere"/,
    );
    expect(
      errorOf(
        VALID.replace(
          '    provider: local\n    secret: pg/billing-app',
          '    provider: vaulty\n    secret: pg/billing-app',
        ),
      ),
    ).toMatch(/accounts\[0\]\.provider: .*unknown provider "vaulty"/);
    expect(errorOf(VALID.replace('  - name: reports', '  - name: billing-app'))).toMatch(
      /accounts\[1\]\.name: duplicate account name "billing-app"/,
    );
    expect(errorOf(VALID.replace('gracePeriod: 24h', 'gracePeriod: 24 hours'))).toMatch(
      /accounts\[1\]\.gracePeriod: invalid duration "24 hours"/,
    );
    expect(errorOf(VALID.replace('{ every: 90d }', '{ every: 0d }'))).toMatch(
      /defaults\.schedule\.every: duration "0d" must be positive/,
    );
    expect(errorOf(VALID.replace('gracePeriod: 24h', 'gracePeriod: 100d'))).toMatch(
      /accounts\[1\]\.gracePeriod: .*shorter than the rotation interval/,
    );
  });

  it('checks password policies when the config is loaded', () => {
    expect(
      errorOf(VALID.replace('    exposedTo: [alice]', '    exposedTo: [alice]\n    password: { require: [symbol] }')),
    ).toMatch(/accounts\[0\]\.password: .*requires a symbol/);
    expect(
      errorOf(VALID.replace('    exposedTo: [alice]', '    exposedTo: [alice]\n    password: { length: 8 }')),
    ).toMatch(/accounts\[0\]\.password\.length: length must be at least 16/);
  });

  it('rejects a config that is not a mapping or not YAML', () => {
    expect(errorOf('- a\n- b')).toMatch(/must be a YAML mapping/);
    expect(errorOf('state: [unclosed')).toMatch(/not valid YAML/);
  });

  it('finds the file from --config, then $PGROTATE_CONFIG, then ./pgrotate.yaml', () => {
    expect(configPath('/etc/x.yaml', { PGROTATE_CONFIG: '/y.yaml' }, '/cwd')).toBe('/etc/x.yaml');
    expect(configPath(undefined, { PGROTATE_CONFIG: '/y.yaml' }, '/cwd')).toBe('/y.yaml');
    expect(configPath(undefined, {}, '/cwd')).toBe('/cwd/pgrotate.yaml');
    expect(() => loadConfigFile('/nonexistent/pgrotate.yaml', ENV)).toThrow(
      /cannot read config file \/nonexistent\/pgrotate.yaml \(ENOENT\)/,
    );
  });
});
