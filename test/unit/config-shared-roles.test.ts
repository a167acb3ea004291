import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/app/load-config.js';
import { serverKey } from '../../src/core/config/server-identity.js';
import { ConfigError } from '../../src/core/errors.js';

// Issue 24: two accounts that manage one role (on one server) lock each other out, so the config
// is refused at load, naming both accounts and the role. Also: a zero duration is "not positive".

const ENV = { PGROTATE_ADMIN_PASSWORD: 'admin-pw-456' };

interface Target {
  host?: string;
  port?: number;
  database?: string;
}

/** A config with these targets (all reachable through one admin) and accounts (YAML flow maps). */
function config(accounts: string[], targets: Record<string, Target> = { main: {} }, extra = ''): string {
  const t = Object.entries(targets)
    .map(
      ([name, x]) =>
        `  ${name}: { host: "${x.host ?? '127.0.0.1'}", port: ${x.port ?? 5432}, database: ${x.database ?? 'app'}, admin: { username: rotator, password: env:PGROTATE_ADMIN_PASSWORD } }`,
    )
    .join('\n');
  return `
state: { url: "postgres://pgrotate@127.0.0.1:5432/pgrotate" }
providers: { local: { type: file, path: ./secrets.json } }
targets:
${t}
${extra}
accounts:
${accounts.map((a) => `  - ${a}`).join('\n')}
`;
}

const single = (name: string, role: string, target = 'main') =>
  `{ name: ${name}, target: ${target}, role: "${role}", provider: local, secret: pg/${name} }`;
const pair = (name: string, a: string, b: string, target = 'main') =>
  `{ name: ${name}, target: ${target}, strategy: alternating, roles: ["${a}", "${b}"], provider: local, secret: pg/${name} }`;

function errorOf(text: string): string {
  try {
    parseConfigText(text, ENV, 'test.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

function accepts(text: string): void {
  expect(() => parseConfigText(text, ENV, 'test.yaml')).not.toThrow();
}

describe('accounts that manage the same role', () => {
  it('two single-user accounts on one role of one target are refused, naming both and the role', () => {
    const msg = errorOf(config([single('billing', 'app_login'), single('billing-copy', 'app_login')]));
    expect(msg).toMatch(
      /accounts\[1\]\.role: accounts "billing" \(accounts\[0\]\) and "billing-copy" both manage role "app_login" on target main;/,
    );
    expect(msg).toMatch(/give each account its own role/);
  });

  it('a fleet with one mistake repeated lists the first 50 problems and how many more', () => {
    const accounts = Array.from({ length: 500 }, (_, i) => single(`acct-${i}`, 'shared_login'));
    const lines = errorOf(config(accounts)).split('\n');
    expect(lines.filter((l) => / both manage role "shared_login"/.test(l))).toHaveLength(50);
    expect(lines.at(-1)).toBe('  ... and 449 more problems');
    expect(lines[1]).toMatch(/^ {2}accounts\[1\]\.role: accounts "acct-0" \(accounts\[0\]\) and "acct-1"/);
  });

  it('a single-user account on a role of an alternating pair is refused, in either order', () => {
    expect(errorOf(config([pair('reports', 'rep_a', 'rep_b'), single('rep-tool', 'rep_b')]))).toMatch(
      /accounts\[1\]\.role: accounts "reports" \(accounts\[0\]\) and "rep-tool" both manage role "rep_b" on target main/,
    );
    expect(errorOf(config([single('rep-tool', 'rep_a'), pair('reports', 'rep_a', 'rep_b')]))).toMatch(
      /accounts\[1\]\.roles\[0\]: accounts "rep-tool" \(accounts\[0\]\) and "reports" both manage role "rep_a"/,
    );
  });

  it('two alternating pairs sharing one role, or both roles in either order, are refused', () => {
    expect(errorOf(config([pair('one', 'r_a', 'r_b'), pair('two', 'r_c', 'r_a')]))).toMatch(
      /accounts\[1\]\.roles\[1\]: accounts "one" \(accounts\[0\]\) and "two" both manage role "r_a"/,
    );
    const both = errorOf(config([pair('one', 'r_a', 'r_b'), pair('two', 'r_b', 'r_a')]));
    expect(both).toMatch(/accounts\[1\]\.roles\[0\]: .*both manage role "r_b"/);
    expect(both).toMatch(/accounts\[1\]\.roles\[1\]: .*both manage role "r_a"/);
  });

  it('reports every shared role at once, each against the account that named it first', () => {
    const msg = errorOf(
      config([single('a', 'x'), single('b', 'x'), single('c', 'x'), single('d', 'y'), single('e', 'y')]),
    );
    expect(msg).toMatch(/accounts\[1\]\.role: accounts "a" \(accounts\[0\]\) and "b"/);
    expect(msg).toMatch(/accounts\[2\]\.role: accounts "a" \(accounts\[0\]\) and "c"/);
    expect(msg).toMatch(/accounts\[4\]\.role: accounts "d" \(accounts\[3\]\) and "e" both manage role "y"/);
  });

  it('two targets on the same host and port share roles, whatever their database', () => {
    const targets = { main: { database: 'app' }, other: { database: 'reporting' } };
    expect(errorOf(config([single('a', 'shared'), single('b', 'shared', 'other')], targets))).toMatch(
      /accounts\[1\]\.role: accounts "a" \(accounts\[0\]\) and "b" both manage role "shared" on targets main and other, the same server 127\.0\.0\.1:5432/,
    );
  });

  it('host names are compared without case, a root dot or IPv6 brackets; loopback names are one server', () => {
    const cases: Array<[string, string]> = [
      ['localhost', '127.0.0.1'],
      ['::1', 'LOCALHOST'],
      ['[::1]', '127.0.0.1'],
      ['DB.Example.com', 'db.example.com.'],
      ['/var/run/postgresql', '/var/run/postgresql/'],
    ];
    for (const [h1, h2] of cases) {
      const targets = { one: { host: h1 }, two: { host: h2 } };
      expect(errorOf(config([pair('p', 'r1', 'r2', 'one'), single('s', 'r2', 'two')], targets)), `${h1} ${h2}`).toMatch(
        /accounts\[1\]\.role: accounts "p" \(accounts\[0\]\) and "s" both manage role "r2" on targets one and two/,
      );
    }
  });

  it('accepts the same role name on other servers, and role names differing only in case', () => {
    accepts(
      config([single('a', 'app'), single('b', 'app', 'p2'), single('c', 'app', 'h2')], {
        main: {},
        p2: { port: 5433 },
        h2: { host: 'db2.example.com' },
      }),
    );
    // pgrotate quotes role names, so "App" and "app" are two roles.
    accepts(config([single('a', 'app'), single('b', 'App'), pair('c', 'APP', 'aPP')]));
  });

  it('a role name that came from an env: reference is scrubbed from the message, which still names both accounts', () => {
    const text = config([single('a', 'env:SHARED_ROLE'), single('b', 'env:SHARED_ROLE')]);
    let msg = '';
    try {
      parseConfigText(text, { ...ENV, SHARED_ROLE: 'role-from-a-secret-file' }, 'test.yaml');
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).toMatch(/accounts\[1\]\.role: accounts "a" \(accounts\[0\]\) and "b" both manage role/);
    expect(msg).not.toContain('role-from-a-secret-file');
  });

  it('serverKey folds only spellings that are certainly one server', () => {
    expect(serverKey('LocalHost', 5432)).toBe(serverKey('127.0.0.1', 5432));
    expect(serverKey('localhost', 5432)).not.toBe(serverKey('localhost', 5433));
    expect(serverKey('127.0.0.2', 5432)).not.toBe(serverKey('127.0.0.1', 5432));
    expect(serverKey('db.example.com', 5432)).not.toBe(serverKey('db2.example.com', 5432));
    expect(serverKey('/tmp', 5432)).not.toBe(serverKey('localhost', 5432));
  });

  it('rotating the admin login of another target on the same server is refused, naming that target', () => {
    const targets = { main: {}, alias: { host: 'localhost', database: 'other' }, elsewhere: { port: 5433 } };
    expect(errorOf(config([single('adm', 'rotator', 'alias')], targets))).toMatch(
      /accounts\[0\]\.role: account "adm" rotates rotator, the admin login of target main;.*\n.*the admin login of target alias;/,
    );
    expect(errorOf(config([single('adm', 'rotator', 'alias')], targets))).not.toMatch(/target elsewhere/);
  });

  it('the state login check uses the same notion of one server', () => {
    const text = config([single('state-login', 'pgrotate')], { main: { host: 'LOCALHOST' } });
    expect(errorOf(text)).toMatch(
      /accounts\[0\]\.role: account "state-login" rotates pgrotate, the state database's login/,
    );
  });
});

describe('zero durations', () => {
  it('every: 0s is refused as not positive, naming the account key path', () => {
    const msg = errorOf(config([single('zero', 'z').replace(' }', ', schedule: { every: 0s } }')]));
    expect(msg).toMatch(/accounts\[0\]\.schedule\.every: duration "0s" must be positive \(at least 1s\)/);
    expect(msg).not.toMatch(/whole number/);
  });

  it('a zero default schedule or grace period is refused the same way', () => {
    expect(errorOf(config([single('a', 'z')], { main: {} }, 'defaults: { schedule: { every: 0d } }'))).toMatch(
      /defaults\.schedule\.every: duration "0d" must be positive/,
    );
    expect(errorOf(config([pair('p', 'r1', 'r2').replace(' }', ', gracePeriod: 0h }')]))).toMatch(
      /accounts\[0\]\.gracePeriod: duration "0h" must be positive/,
    );
  });

  it('a misspelt duration still gets the whole-number hint', () => {
    expect(errorOf(config([single('a', 'z').replace(' }', ', schedule: { every: 1.5d } }')]))).toMatch(
      /accounts\[0\]\.schedule\.every: invalid duration "1\.5d" \(use a whole number/,
    );
  });
});
