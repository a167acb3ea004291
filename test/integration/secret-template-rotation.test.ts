import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parsePgUrl } from 'pg-connection-string';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baoApi, type BaoServerInfo } from '../support/bao-server.js';
import { createPgFixture, type CliRun, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';

// secretTemplate end to end with the built CLI (run `npm run build` first) on PostgreSQL 15, in
// the file provider and in OpenBao: passwords full of URL-significant characters, DATABASE_URL and
// JDBC_URL read back with `new URL` and with node-postgres' own parser, and a pg.Client built from
// the stored DATABASE_URL logs in after a first and a second rotation, on an alternating pair
// (where {username} is the role switched to) and after a crash after apply and its resume. At
// debug level, no password, encoded password or rendered URL appears in the CLI's output, the
// audit rows or the server log; an unknown placeholder is refused before anything changes.

const DATABASE_URL = 'postgresql://{username}:{password}@{host}:{port}/{dbname}?sslmode=disable';
const JDBC_URL = 'jdbc:postgresql://{host}:{port}/{dbname}?user={username}&password={password}';
// Every character here that is not a letter or digit has a meaning somewhere in a URL.
const POLICY = {
  length: 40,
  alphabet: { chars: 'abcdXYZ0123@:/?#%+&=$,;[]{}"<>|`^!*()' },
  require: ['lower', 'upper', 'digit', 'symbol'],
};

interface Store {
  name: string;
  providers: () => Record<string, unknown>;
  env: () => NodeJS.ProcessEnv;
  /** The current value exactly as applications read it. */
  read: (secret: string) => Promise<Record<string, unknown> | null>;
}

const bao = () => service<BaoServerInfo>('bao');
const run = randomUUID().slice(0, 8);

function fileStore(fx: () => PgFixture): Store {
  return {
    name: 'local',
    providers: () => ({ local: { type: 'file', path: fx().secretsFile } }),
    env: () => ({}),
    read: async (secret) => {
      try {
        return (
          (JSON.parse(readFileSync(fx().secretsFile, 'utf8')) as Record<string, Record<string, unknown>>)[secret] ??
          null
        );
      } catch {
        return null;
      }
    },
  };
}

function baoStore(): Store {
  return {
    name: 'bao',
    providers: () => ({
      bao: { type: 'vault', address: bao().address, mount: 'secret', token: 'env:BAO_TEST_TOKEN' },
    }),
    env: () => ({ BAO_TEST_TOKEN: bao().rootToken }),
    read: async (secret) => {
      const r = await baoApi(bao().address, bao().rootToken)('GET', `secret/data/${secret}`);
      return r.status === 404 ? null : (r.json.data as { data: Record<string, unknown> }).data;
    },
  };
}

/** Log in with a client built from the connection string alone, as an application would. */
async function logsIn(connectionString: string): Promise<string> {
  const c = new pg.Client({ connectionString });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u as string;
  } finally {
    await c.end();
  }
}

/** The stored URLs say what the secret's own fields say, read by both parsers. */
function expectUrlsMatch(fx: PgFixture, value: Record<string, unknown>): void {
  const { username, password } = value as { username: string; password: string };
  const dbUrl = value.DATABASE_URL as string;
  const url = new URL(dbUrl);
  expect(decodeURIComponent(url.username)).toBe(username);
  expect(decodeURIComponent(url.password)).toBe(password);
  expect(url.hostname).toBe(fx.server.host);
  expect(url.port).toBe(String(fx.server.port));
  expect(decodeURIComponent(url.pathname.slice(1))).toBe(fx.targetDb);
  expect(url.searchParams.get('sslmode')).toBe('disable');
  const parsed = parsePgUrl(dbUrl);
  expect(parsed).toMatchObject({
    user: username,
    password,
    host: fx.server.host,
    port: String(fx.server.port),
    database: fx.targetDb,
  });
  const jdbc = new URL((value.JDBC_URL as string).replace(/^jdbc:/, ''));
  expect(jdbc.protocol).toBe('postgresql:');
  expect(jdbc.searchParams.get('user')).toBe(username);
  expect(jdbc.searchParams.get('password')).toBe(password);
  expect(decodeURIComponent(jdbc.pathname.slice(1))).toBe(fx.targetDb);
}

/** The ways a secret could be written into text: as is, percent-encoded, JSON-escaped. */
function forms(secret: string): string[] {
  return [...new Set([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)])];
}

describe('secretTemplate: real rotations with the built CLI (pg15)', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  for (const store of [fileStore(() => fx), baoStore()]) {
    const config = (accounts: unknown[]) => {
      const { path, env } = fx.writeConfig({
        accounts,
        providers: store.providers(),
        defaults: { password: POLICY, secretTemplate: { DATABASE_URL } },
      });
      return { path, env: { ...env, ...store.env(), PGROTATE_LOG_LEVEL: 'debug' } };
    };

    it(`${store.name}: two rotations and an alternating pair; the URLs log in; nothing secret in output, audit rows or server log`, async () => {
      const role = await fx.createRole(`tpl_one_${store.name}_${fx.suffix}`);
      const owner = `tpl_own_${store.name}_${fx.suffix}`;
      const c = await fx.rotatorClient('postgres');
      await c.query(`CREATE ROLE ${owner} NOLOGIN`);
      await c.end();
      const a = await fx.createRole(`tpl_a_${store.name}_${fx.suffix}`, { inRole: owner });
      const b = await fx.createRole(`tpl_b_${store.name}_${fx.suffix}`, { inRole: owner });
      const one = `tpl-${run}/one-${store.name}`;
      const pair = `tpl-${run}/pair-${store.name}`;
      const { path, env } = config([
        // JDBC_URL is the account's own key, on top of the defaults' DATABASE_URL.
        {
          name: `one-${store.name}`,
          target: 'main',
          role,
          provider: store.name,
          secret: one,
          secretTemplate: { JDBC_URL },
        },
        {
          name: `pair-${store.name}`,
          target: 'main',
          strategy: 'alternating',
          roles: [a, b],
          gracePeriod: '1h',
          provider: store.name,
          secret: pair,
          secretTemplate: { JDBC_URL },
        },
      ]);
      const logStart = readFileSync(fx.server.logFile, 'utf8').length;
      const runs: CliRun[] = [];
      const secrets: string[] = [];
      const seenUrls: string[] = [];
      const pairUsers: string[] = [];
      for (let i = 0; i < 2; i++) {
        const r = await fx.cliProcess(
          ['--config', path, 'rotate', `one-${store.name}`, `pair-${store.name}`, '--json'],
          env,
        );
        expect(r.code, r.stderr).toBe(0);
        runs.push(r);
        for (const [secret, expectedRoles] of [
          [one, [role]],
          [pair, [a, b]],
        ] as const) {
          const value = (await store.read(secret)) as Record<string, unknown>;
          expect(Object.keys(value)).toEqual(expect.arrayContaining(['DATABASE_URL', 'JDBC_URL']));
          const password = value.password as string;
          // The policy really produced characters a URL must encode.
          expect(encodeURIComponent(password)).not.toBe(password);
          expect(expectedRoles).toContain(value.username);
          expectUrlsMatch(fx, value);
          expect(await logsIn(value.DATABASE_URL as string)).toBe(value.username);
          expect(seenUrls).not.toContain(value.DATABASE_URL);
          seenUrls.push(value.DATABASE_URL as string);
          secrets.push(password, value.DATABASE_URL as string, value.JDBC_URL as string);
          if (secret === pair) pairUsers.push(value.username as string);
        }
      }
      // {username} follows the active role of the pair: each turn switches to the other role.
      expect(new Set(pairUsers)).toEqual(new Set([a, b]));
      // The first DATABASE_URL of the single-user account no longer logs in: the password changed.
      await expect(logsIn(seenUrls[0] as string)).rejects.toThrow(/password authentication failed/);
      // The pair's first URL still does: its role keeps its password through the grace period.
      expect(await logsIn(seenUrls[1] as string)).toBe(pairUsers[0]);

      const audit = (
        await fx.stateQuery<{ j: string }>(
          `SELECT row_to_json(e)::text AS j FROM pgrotate.audit_events e WHERE account LIKE '%-${store.name}'`,
        )
      ).rows
        .map((r) => r.j)
        .join('\n');
      expect(audit).toContain('rotation.succeeded');
      const output = runs.map((r) => `${r.stdout}\n${r.stderr}`).join('\n');
      // The log was really written (at debug level; rotate logs nothing below info on these paths).
      expect(output).toContain('"msg":"rotation succeeded"');
      const serverLog = readFileSync(fx.server.logFile, 'utf8').slice(logStart);
      expect(serverLog).toMatch(/ALTER ROLE .* PASSWORD 'SCRAM-SHA-256\$4096:/);
      for (const [where, text] of Object.entries({ output, audit, serverLog }))
        for (const s of secrets)
          for (const f of forms(s)) expect(text.includes(f), `a secret (or its encoded form) in ${where}`).toBe(false);
    });

    it(`${store.name}: a crash after apply; the resumed run promotes the URLs rendered at stage, and they log in`, async () => {
      const role = await fx.createRole(`tpl_crash_${store.name}_${fx.suffix}`);
      const secret = `tpl-${run}/crash-${store.name}`;
      const account = `crash-${store.name}`;
      const { path, env } = config([
        { name: account, target: 'main', role, provider: store.name, secret, secretTemplate: { JDBC_URL } },
      ]);
      const crashed = await fx.cliProcess(['--config', path, 'rotate', account], {
        ...env,
        PGROTATE_FAILPOINT: 'after-apply',
      });
      expect(crashed.signal).toBe('SIGKILL');
      expect(await store.read(secret)).toBeNull();

      const resumed = await fx.cliProcess(['--config', path, 'rotate', account, '--json'], env);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(JSON.parse(resumed.stdout)).toMatchObject({ results: [{ resumed: true }] });
      const value = (await store.read(secret)) as Record<string, unknown>;
      expectUrlsMatch(fx, value);
      expect(await logsIn(value.DATABASE_URL as string)).toBe(role);
      // The resumed run knew the password only from the pending value it read back.
      const output = [crashed, resumed].map((r) => `${r.stdout}\n${r.stderr}`).join('\n');
      for (const s of [value.password, value.DATABASE_URL, value.JDBC_URL] as string[])
        for (const f of forms(s)) expect(output.includes(f), 'a secret in the output').toBe(false);
    });

    it(`${store.name}: an unknown placeholder {pasword} exits 2 naming account and key; nothing changes`, async () => {
      const initial = `initial-${randomUUID()}`;
      const role = await fx.createRole(`tpl_bad_${store.name}_${fx.suffix}`, { password: initial });
      const secret = `tpl-${run}/bad-${store.name}`;
      const account = `bad-${store.name}`;
      const good = config([{ name: account, target: 'main', role, provider: store.name, secret }]);
      const first = await fx.cliProcess(['--config', good.path, 'rotate', account], good.env);
      expect(first.code, first.stderr).toBe(0);
      const before = await store.read(secret);
      const verifier = async () =>
        (await fx.stateQuery<{ v: string }>('SELECT rolpassword AS v FROM pg_authid WHERE rolname = $1', [role]))
          .rows[0]?.v;
      const verifierBefore = await verifier();

      const audits = async () =>
        (await fx.stateQuery('SELECT 1 FROM pgrotate.audit_events WHERE account = $1', [account])).rowCount;
      const auditsBefore = await audits();

      const typo = 'postgresql://{username}:{pasword}@{host}:{port}/{dbname}';
      // The typo in the account's own map, then in the defaults' map.
      for (const [parts, message] of [
        [
          { secretTemplate: { DATABASE_URL: typo } },
          `accounts[0].secretTemplate.DATABASE_URL: account "${account}": secretTemplate key "DATABASE_URL": unknown placeholder {pasword}`,
        ],
        [
          {},
          `defaults.secretTemplate.DATABASE_URL: defaults.secretTemplate key "DATABASE_URL": unknown placeholder {pasword}`,
        ],
      ] as const) {
        const { path, env } = fx.writeConfig({
          accounts: [{ name: account, target: 'main', role, provider: store.name, secret, ...parts }],
          providers: store.providers(),
          ...('secretTemplate' in parts ? {} : { defaults: { secretTemplate: { DATABASE_URL: typo } } }),
        });
        const r = await fx.cliProcess(['--config', path, 'rotate', account], { ...env, ...store.env() });
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toContain(message);
        expect(await store.read(secret)).toEqual(before);
        expect(await verifier()).toBe(verifierBefore);
        expect(await audits()).toBe(auditsBefore);
      }
      expect(await logsIn((before as Record<string, string>).DATABASE_URL as string)).toBe(role);
    });
  }
});
