import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configPath, loadConfigFile, parseConfigText } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/errors.js';

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
    expect(admin && 'password' in admin ? admin.password : null).toBe('from-a-file');
    expect(errorOf(VALID.replace('env:PGROTATE_ADMIN_PASSWORD', 'file:/nonexistent/pw'))).toMatch(/targets\.main\.admin\.password: cannot read file \/nonexistent\/pw \(ENOENT\)/);
  });

  it('names the key path of an unknown key', () => {
    expect(errorOf(VALID.replace('    exposedTo: [alice]', '    exposedTo: [alice]\n    rol: typo'))).toMatch(/accounts\[0\]\.rol: unknown key/);
    expect(errorOf(VALID.replace('  url:', '  colour: blue\n  url:'))).toMatch(/state\.colour: unknown key/);
  });

  it('names a missing environment reference without echoing values', () => {
    const msg = errorOf(VALID, { PGROTATE_STATE_PASSWORD: 'state-pw-123' });
    expect(msg).toMatch(/targets\.main\.admin\.password: environment variable PGROTATE_ADMIN_PASSWORD is not set/);
    expect(msg).not.toContain('state-pw-123');
  });

  it('names unknown targets and providers, duplicate names and bad durations', () => {
    expect(errorOf(VALID.replace('    target: main\n    role:', '    target: nowhere\n    role:'))).toMatch(/accounts\[0\]\.target: account "billing-app" names unknown target "nowhere"/);
    expect(errorOf(VALID.replace('    provider: local\n    secret: pg/billing-app', '    provider: vaulty\n    secret: pg/billing-app'))).toMatch(/accounts\[0\]\.provider: .*unknown provider "vaulty"/);
    expect(errorOf(VALID.replace('  - name: reports', '  - name: billing-app'))).toMatch(/accounts\[1\]\.name: duplicate account name "billing-app"/);
    expect(errorOf(VALID.replace('gracePeriod: 24h', 'gracePeriod: 24 hours'))).toMatch(/accounts\[1\]\.gracePeriod: invalid duration "24 hours"/);
    expect(errorOf(VALID.replace('{ every: 90d }', '{ every: 0d }'))).toMatch(/defaults\.schedule.*invalid duration/);
    expect(errorOf(VALID.replace('gracePeriod: 24h', 'gracePeriod: 100d'))).toMatch(/accounts\[1\]\.gracePeriod: .*shorter than the rotation interval/);
  });

  it('checks password policies when the config is loaded', () => {
    expect(errorOf(VALID.replace('    exposedTo: [alice]', '    exposedTo: [alice]\n    password: { require: [symbol] }'))).toMatch(/accounts\[0\]\.password: .*requires a symbol/);
    expect(errorOf(VALID.replace('    exposedTo: [alice]', '    exposedTo: [alice]\n    password: { length: 8 }'))).toMatch(/accounts\[0\]\.password\.length: length must be at least 16/);
  });

  it('rejects a config that is not a mapping or not YAML', () => {
    expect(errorOf('- a\n- b')).toMatch(/must be a YAML mapping/);
    expect(errorOf('state: [unclosed')).toMatch(/not valid YAML/);
  });

  it('finds the file from --config, then $PGROTATE_CONFIG, then ./pgrotate.yaml', () => {
    expect(configPath('/etc/x.yaml', { PGROTATE_CONFIG: '/y.yaml' }, '/cwd')).toBe('/etc/x.yaml');
    expect(configPath(undefined, { PGROTATE_CONFIG: '/y.yaml' }, '/cwd')).toBe('/y.yaml');
    expect(configPath(undefined, {}, '/cwd')).toBe('/cwd/pgrotate.yaml');
    expect(() => loadConfigFile('/nonexistent/pgrotate.yaml', ENV)).toThrow(/cannot read config file \/nonexistent\/pgrotate.yaml \(ENOENT\)/);
  });
});
