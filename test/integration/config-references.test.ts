import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import type { BaoServerInfo } from '../support/bao-server.js';
import { freePort } from '../support/free-port.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';

// `env:`/`file:` references and the checks made when the config is loaded, against real
// PostgreSQL 15 (and OpenBao for Vault names): a referenced value never appears in CLI output,
// logs or the state database; a value that cannot be a role, database or host name is refused
// at load naming the key (PostgreSQL would otherwise echo a 63-byte prefix of it, past the
// redactor); `file:` reads only small regular files; large YAML and bad Vault names are refused
// before anything is contacted.

let fx: PgFixture;
let role: string;

beforeAll(async () => {
  fx = await createPgFixture(pgServer('pg15'));
  role = await fx.createRole(`ref_${fx.suffix}`, { password: 'ref-initial-password-1' });
  // One good rotation first, so the state tables exist and later failures would land in them.
  const { path, env } = fx.writeConfig({ accounts: [account()] });
  const r = await fx.cli(['--config', path, 'rotate', 'ref'], env);
  expect(r.code, r.stdout + r.stderr).toBe(0);
});

afterAll(async () => {
  await fx?.cleanup();
});

function account(extra: Record<string, unknown> = {}) {
  return { name: 'ref', target: 'main', role, provider: 'local', secret: 'pg/ref', ...extra };
}

/** Every row of every table in the state schema, as one string to search. */
async function stateText(): Promise<string> {
  const c = await fx.rotatorClient(fx.stateDb);
  try {
    const tables = await c.query<{ t: string }>(
      `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'pgrotate'`,
    );
    expect(tables.rows.length).toBeGreaterThan(0);
    let out = '';
    for (const { t } of tables.rows)
      out += JSON.stringify((await c.query(`SELECT * FROM pgrotate.${JSON.stringify(t)}`)).rows);
    return out;
  } finally {
    await c.end();
  }
}

function writeFile(name: string, content: string | Buffer): string {
  const path = join(fx.dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

describe('env:/file: references are secrets', () => {
  it('a multi-line file (like /etc/shadow) as admin.username, database, host or role is refused at load naming the key; its contents appear nowhere', async () => {
    const marker = `SHADOWMARK${fx.suffix}`;
    const shadow = writeFile(
      'shadow',
      `root:${marker}:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\nbin:*:19700:0:99999:7:::\n`,
    );
    const cases: Array<{ key: RegExp; parts: Parameters<PgFixture['writeConfig']>[0] }> = [
      {
        key: /targets\.main\.admin\.username: not a usable role name: contains a line break/,
        parts: {
          accounts: [account()],
          targetExtra: { admin: { username: `file:${shadow}`, password: 'env:TEST_ROTATOR_PASSWORD' } },
        },
      },
      {
        key: /targets\.main\.database: not a usable database name: contains a line break/,
        parts: { accounts: [account()], targetExtra: { database: `file:${shadow}` } },
      },
      {
        key: /targets\.main\.host: not a usable host name: contains a line break/,
        parts: { accounts: [account()], targetExtra: { host: `file:${shadow}` } },
      },
      {
        key: /accounts\[0\]\.role: not a usable role name: contains a line break/,
        parts: { accounts: [account({ role: `file:${shadow}` })] },
      },
    ];
    for (const { key, parts } of cases) {
      const { path, env } = fx.writeConfig(parts);
      for (const args of [
        ['rotate', 'ref'],
        ['status', '--json'],
      ]) {
        const r = await fx.cli(['--config', path, ...args], env);
        expect(r.code, `${args[0]}: ${r.stdout}${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(key);
        expect(r.stdout + r.stderr).not.toContain(marker);
        expect(r.stdout + r.stderr).not.toContain('daemon:');
      }
    }
    expect(await stateText()).not.toContain(marker);
  });

  it('a name longer than 63 bytes (PostgreSQL would print its 63-byte prefix) is refused at load naming the key', async () => {
    const marker = `LONGMARK${fx.suffix}`;
    const long = writeFile('long-name', `${marker}${'x'.repeat(60)}\n`);
    const { path, env } = fx.writeConfig({ accounts: [account()], targetExtra: { database: `file:${long}` } });
    const r = await fx.cli(['--config', path, 'rotate', 'ref'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /targets\.main\.database: not a usable database name: \d+ bytes, PostgreSQL allows at most 63/,
    );
    expect(r.stdout + r.stderr).not.toContain(marker);
    // A control character inside a postgres:// URL is refused too (the URL parser would drop it silently).
    const url = writeFile(
      'state-url',
      `postgres://${fx.rotator}@${fx.server.host}:${fx.server.port}/${fx.stateDb}%0A${marker}\n`,
    );
    const { path: p2, env: e2 } = fx.writeConfig({
      accounts: [account()],
      extra: { state: { url: `file:${url}`, password: 'env:TEST_ROTATOR_PASSWORD' } },
    });
    const r2 = await fx.cli(['--config', p2, 'status'], e2);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/state\.url: not a usable database name in the URL: contains a line break/);
    expect(r2.stdout + r2.stderr).not.toContain(marker);
    expect(await stateText()).not.toContain(marker);
  });

  it('a referenced name that loads but fails is redacted from the rotation error, the logs, lastError, status and history', async () => {
    const userMarker = `usermark${fx.suffix}`;
    const dbMarker = `dbmark${fx.suffix}`;
    const user = writeFile('admin-user', `${userMarker}\n`);
    const db = writeFile('database', `${dbMarker}\n`);
    for (const [marker, targetExtra] of [
      [userMarker, { admin: { username: `file:${user}`, password: 'env:TEST_ROTATOR_PASSWORD' } }],
      [dbMarker, { database: `file:${db}` }],
    ] as const) {
      const { path, env } = fx.writeConfig({ accounts: [account()], targetExtra });
      const r = await fx.cli(['--config', path, 'rotate', 'ref'], env);
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toMatch(/account ref: target main .*\[REDACTED\]/);
      const status = await fx.cli(['--config', path, 'status', '--json'], env);
      const lastError = (JSON.parse(status.stdout) as { accounts: Array<{ lastError: string }> }).accounts[0]
        ?.lastError;
      expect(lastError).toMatch(/\[REDACTED\]/);
      const history = await fx.cli(['--config', path, 'history', 'ref', '--json'], env);
      expect(history.code).toBe(0);
      const everything =
        r.stdout + r.stderr + status.stdout + status.stderr + history.stdout + history.stderr + (await stateText());
      expect(everything).not.toContain(marker);
      // Nothing was half-applied: the stored credential still logs in.
      const current = await new FileProvider({ name: 'local', path: fx.secretsFile }).getCurrent('pg/ref');
      expect(await fx.canLogin(role, current?.password as string)).toBe(true);
    }
  });

  it('status scrubs a lastError written by another process that holds a value referenced here', async () => {
    const marker = `hostmark${fx.suffix}.example`;
    const host = writeFile('public-host', `${marker}\n`);
    const { path, env } = fx.writeConfig({ accounts: [account()], targetExtra: { publicHost: `file:${host}` } });
    const c = await fx.rotatorClient(fx.stateDb);
    try {
      await c.query(`UPDATE pgrotate.accounts SET last_status = 'failed', last_error = $1 WHERE name = 'ref'`, [
        `written elsewhere: cannot resolve ${marker}`,
      ]);
    } finally {
      await c.end();
    }
    const json = await fx.cli(['--config', path, 'status', '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    expect((JSON.parse(json.stdout) as { accounts: Array<{ lastError: string }> }).accounts[0]?.lastError).toBe(
      'written elsewhere: cannot resolve [REDACTED]',
    );
    const text = await fx.cli(['--config', path, 'status'], env);
    expect(text.stdout + json.stdout).not.toContain(marker);
  });
});

describe('file: references read only small regular files', () => {
  it('refuses /dev/zero, /dev/urandom, a FIFO, a directory and a file over 64 KiB, naming the key, quickly', async () => {
    const fifo = join(fx.dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const dir = join(fx.dir, 'a-directory');
    mkdirSync(dir);
    const big = writeFile('big', 'y'.repeat(64 * 1024 + 1));
    const cases: Array<[string, RegExp]> = [
      ['/dev/zero', /is a character device/],
      ['/dev/urandom', /is a character device/],
      [fifo, /is a FIFO/],
      [dir, /is a directory/],
      [big, /is 65537 bytes/],
    ];
    for (const [file, why] of cases) {
      const { path, env } = fx.writeConfig({
        accounts: [account()],
        targetExtra: { admin: { username: fx.rotator, password: `file:${file}` } },
      });
      const t0 = Date.now();
      const r = await fx.cli(['--config', path, 'status'], env);
      expect(r.code, `${file}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(`targets.main.admin.password: file ${file} `);
      expect(r.stderr).toMatch(why);
      expect(r.stderr).toMatch(/a file: reference must name a regular file of at most 64 KiB/);
      expect(r.stderr).not.toContain('yyyy');
      expect(Date.now() - t0).toBeLessThan(10_000);
    }
  });

  it('accepts a regular file of exactly 64 KiB and trims one trailing newline', async () => {
    const exact = writeFile('exact', 'z'.repeat(64 * 1024));
    const pw = writeFile('state-password', `${fx.rotatorPassword}\n`);
    const { path, env } = fx.writeConfig({
      accounts: [account()],
      targetExtra: { admin: { username: fx.rotator, password: `file:${exact}` } },
      extra: {
        state: {
          url: `postgres://${fx.rotator}@${fx.server.host}:${fx.server.port}/${fx.stateDb}`,
          password: `file:${pw}`,
        },
      },
    });
    // status logs in to the state database with the trimmed password.
    const r = await fx.cli(['--config', path, 'status', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain('zzzz');
  });
});

describe('large YAML configs', () => {
  it('a YAML config over 2 MiB is refused before parsing with a message recommending JSON; the same config as JSON loads', async () => {
    const accounts = Array.from({ length: 16_000 }, (_, i) =>
      // Each its own role: two accounts on one role are refused at load.
      account({
        name: `acct-${i}`,
        role: `big_${fx.suffix}_${i}`,
        secret: `pg/acct-${i}`,
        exposedTo: ['alice', 'contractors'],
      }),
    );
    const { path, env } = fx.writeConfig({ accounts });
    const yaml = [
      'state:',
      `  url: postgres://${fx.rotator}@${fx.server.host}:${fx.server.port}/${fx.stateDb}`,
      '  password: env:TEST_ROTATOR_PASSWORD',
      'providers:',
      `  local: { type: file, path: ${fx.secretsFile} }`,
      'targets:',
      '  main:',
      `    host: ${fx.server.host}`,
      `    port: ${fx.server.port}`,
      `    database: ${fx.targetDb}`,
      '    sslmode: disable',
      `    admin: { username: ${fx.rotator}, password: env:TEST_ROTATOR_PASSWORD }`,
      'accounts:',
      ...accounts.map(
        (a) =>
          `  - name: ${a.name}\n    target: main\n    role: ${a.role}\n    provider: local\n    secret: ${a.secret}\n    exposedTo: [alice, contractors]`,
      ),
      '',
    ].join('\n');
    expect(yaml.length).toBeGreaterThan(2 * 1024 * 1024);
    const yamlPath = writeFile('big.yaml', yaml);
    const t0 = Date.now();
    const refused = await fx.cli(['--config', yamlPath, 'history', 'acct-0'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /config is \d+ bytes of YAML; YAML configs are limited to 2 MiB .*Write a large config as JSON/,
    );
    expect(Date.now() - t0).toBeLessThan(5_000);
    // The JSON form of the same config (writeConfig writes JSON) is read.
    const ok = await fx.cli(['--config', path, 'history', 'acct-0', '--json'], env);
    expect(ok.code, ok.stderr).toBe(0);
  });
});

describe('Vault secret names are checked at load', () => {
  const bao = () => service<BaoServerInfo>('bao');

  it('refuses ".", "..", empty segments and names under the pending prefix with exit 2 naming the key, before contacting Vault', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const bad = [
      'pg/./app',
      'pg/../admin',
      '../app',
      'pg//app',
      '/pg/app',
      'pg/app/',
      'pgrotate-pending/pg/app',
      'pgrotate-pending',
    ];
    for (const secret of bad) {
      const { path, env } = fx.writeConfig({
        accounts: [{ name: 'v', target: 'main', role, provider: 'bao', secret }],
        providers: { bao: { type: 'vault', address: closed, token: 'env:TEST_ROTATOR_PASSWORD', timeout: '1s' } },
      });
      const r = await fx.cli(['--config', path, 'status'], env);
      expect(r.code, `${secret}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(
        /accounts\[0\]\.secret: account "v": secret .*(is not a usable Vault path|lies under the pending prefix "pgrotate-pending")/,
      );
    }
    // A custom pending prefix is honoured, and the admin secret is checked too.
    const custom = fx.writeConfig({
      accounts: [{ name: 'v', target: 'main', role, provider: 'bao', secret: 'staging/pg/app' }],
      providers: {
        bao: { type: 'vault', address: closed, token: 'env:TEST_ROTATOR_PASSWORD', pendingPrefix: 'staging' },
      },
      targetExtra: { admin: { provider: 'bao', secret: 'pg/../admin' } },
    });
    const r = await fx.cli(['--config', custom.path, 'status'], custom.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/accounts\[0\]\.secret: .*lies under the pending prefix "staging"/);
    expect(r.stderr).toMatch(
      /targets\.main\.admin\.secret: target "main" admin secret "pg\/\.\.\/admin" is not a usable Vault path/,
    );
    const badMount = fx.writeConfig({
      accounts: [],
      providers: { bao: { type: 'vault', address: closed, token: 'env:TEST_ROTATOR_PASSWORD', mount: 'kv/../secret' } },
    });
    const m = await fx.cli(['--config', badMount.path, 'status'], badMount.env);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/providers\.bao\.mount: "\." and "\.\." segments are not allowed/);
  });

  it('names with dots inside a segment are fine and rotate against OpenBao', async () => {
    const dotsRole = await fx.createRole(`dots_${fx.suffix}`, { password: 'dots-initial-password-1' });
    const { path, env } = fx.writeConfig({
      accounts: [
        { name: 'dots', target: 'main', role: dotsRole, provider: 'bao', secret: `ref-${fx.suffix}/app.v1/..x` },
      ],
      providers: { bao: { type: 'vault', address: bao().address, token: 'env:BAO_TEST_TOKEN' } },
    });
    const r = await fx.cli(['--config', path, 'rotate', 'dots'], { ...env, BAO_TEST_TOKEN: bao().rootToken });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});
