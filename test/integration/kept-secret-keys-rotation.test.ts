import { randomUUID } from 'node:crypto';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsSecretsManagerProvider } from '../../providers/aws/aws-secrets-manager-provider.js';
import { VaultProvider } from '../../providers/vault/vault-provider.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import type { SecretProvider } from '../../src/core/provider/secret-provider.js';
import { awsSecretName, labelledVersions, motoClient, seedSecret } from '../support/aws-test-client.js';
import { baoApi, type BaoServerInfo } from '../support/bao-server.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';
import type { MotoServiceInfo } from '../services/moto-service.js';

// Real rotations through the CLI (pg15) of secrets that carry keys pgrotate does not own: a
// team's Vault KV secret (pool_size, sslmode, owner_team) in OpenBao and an RDS-created AWS
// secret (dbInstanceIdentifier, dbClusterIdentifier, proxy, masterarn) in moto. The keys survive
// the first rotation, a second one, an alternating pair's turns and a crash after stage with its
// resume; a secret that cannot be kept as it is (a kept key holding the password, a value that
// is not a JSON object) is refused before anything changes. Run `npm run build` first.

const TEAM_KEYS = { pool_size: 20, sslmode: 'verify-full', owner_team: 'payments' };
const RDS_KEYS = {
  dbInstanceIdentifier: 'billing-db-1',
  dbClusterIdentifier: 'billing-cluster',
  proxy: 'billing-proxy.proxy-abc123.us-east-1.rds.amazonaws.com',
  masterarn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-1a2b3c-AbCdEf',
};
const OWNED = ['dbname', 'engine', 'host', 'password', 'port', 'rotatedAt', 'rotatesAt', 'rotationId', 'username'];

interface Store {
  label: string;
  keys: Record<string, unknown>;
  providers: () => Record<string, unknown>;
  env: () => NodeJS.ProcessEnv;
  provider: () => SecretProvider;
  secretName: () => string;
  /** Write the secret's current value as its owner (RDS, a person) did: a JSON object's text. */
  seed: (secret: string, json: unknown) => Promise<void>;
  /** Write raw text as the current value (AWS only: KV v2 stores objects). */
  seedText?: (secret: string, text: string) => Promise<void>;
  /** The current value exactly as applications read it (the raw JSON object). */
  read: (secret: string) => Promise<Record<string, unknown> | null>;
  /** The value the last promote replaced, as stored (KV version N-1, AWSPREVIOUS). */
  readPrevious: (secret: string) => Promise<Record<string, unknown> | null>;
  /** How many values the secret has (KV versions, AWS version ids): nothing written means unchanged. */
  versions: (secret: string) => Promise<number>;
  close: () => Promise<void>;
}

const bao = () => service<BaoServerInfo>('bao');
const root = () => baoApi(bao().address, bao().rootToken);
const run = randomUUID().slice(0, 8);

function vaultStore(): Store {
  let provider: VaultProvider | null = null;
  const data = async (path: string) => {
    const r = await root()('GET', path);
    return r.status === 404 ? null : ((r.json.data as { data: Record<string, unknown> }).data ?? null);
  };
  return {
    label: 'vault (OpenBao)',
    keys: TEAM_KEYS,
    providers: () => ({
      bao: { type: 'vault', address: bao().address, mount: 'secret', token: 'env:BAO_TEST_TOKEN' },
    }),
    env: () => ({ BAO_TEST_TOKEN: bao().rootToken }),
    provider: () => {
      const redactor = new Redactor();
      provider ??= new VaultProvider({
        name: 'bao',
        address: bao().address,
        mount: 'secret',
        auth: { method: 'token', token: bao().rootToken },
        redactor,
        log: createLogger(redactor, { level: 'silent' }),
      });
      return provider;
    },
    secretName: () => `kept-${run}/${randomUUID().slice(0, 8)}`,
    seed: async (secret, json) => {
      const r = await root()('POST', `secret/data/${secret}`, { data: json });
      expect(r.status).toBe(200);
    },
    read: (secret) => data(`secret/data/${secret}`),
    readPrevious: async (secret) => {
      const meta = (await root()('GET', `secret/metadata/${secret}`)).json.data as { current_version: number };
      return data(`secret/data/${secret}?version=${meta.current_version - 1}`);
    },
    versions: async (secret) => {
      const r = await root()('GET', `secret/metadata/${secret}`);
      return r.status === 404 ? 0 : (r.json.data as { current_version: number }).current_version;
    },
    close: async () => {
      await provider?.close();
    },
  };
}

function awsStore(): Store {
  const moto = () => service<MotoServiceInfo>('moto');
  let client: ReturnType<typeof motoClient> | null = null;
  let provider: AwsSecretsManagerProvider | null = null;
  const sm = () => (client ??= motoClient(moto()));
  const stage = async (secret: string, VersionStage: string) => {
    const out = await sm().send(new GetSecretValueCommand({ SecretId: secret, VersionStage }));
    return JSON.parse(out.SecretString ?? 'null') as Record<string, unknown> | null;
  };
  return {
    label: 'aws (moto)',
    keys: RDS_KEYS,
    providers: () => ({
      aws: { type: 'aws-secrets-manager', region: moto().region, endpoint: moto().endpoint, maxAttempts: 3 },
    }),
    env: () => ({ ...moto().env }),
    provider: () =>
      (provider ??= new AwsSecretsManagerProvider({
        name: 'aws',
        region: moto().region,
        endpoint: moto().endpoint,
        env: moto().env,
      })),
    secretName: () => awsSecretName('rds'),
    seed: (secret, json) => seedSecret(sm(), secret, JSON.stringify(json)),
    seedText: (secret, text) => seedSecret(sm(), secret, text),
    read: (secret) => stage(secret, 'AWSCURRENT'),
    readPrevious: (secret) => stage(secret, 'AWSPREVIOUS'),
    versions: async (secret) => Object.keys(await labelledVersions(sm(), secret)).length,
    close: async () => {
      await provider?.close();
      client?.destroy();
    },
  };
}

for (const store of [vaultStore(), awsStore()]) {
  const providerName = store.label.startsWith('vault') ? 'bao' : 'aws';

  describe(`kept secret keys: real rotations, ${store.label}`, () => {
    let fx: PgFixture;
    beforeAll(async () => {
      fx = await createPgFixture(pgServer('pg15'));
    });
    afterAll(async () => {
      await store.close();
      await fx?.cleanup();
    });

    const config = (accounts: unknown[]) => {
      const { path, env } = fx.writeConfig({ accounts, providers: store.providers() });
      return { path, env: { ...env, ...store.env() } };
    };
    const rotationIdOf = (stdout: string) =>
      (JSON.parse(stdout) as { results: Array<{ rotationId: string }> }).results[0]?.rotationId as string;
    /** The value as its owner wrote it before pgrotate managed it: no rotation facts. */
    const ownersValue = (role: string, password: string) => ({
      username: role,
      password,
      engine: 'postgres',
      host: fx.server.host,
      port: fx.server.port,
      ...store.keys,
    });

    it('single-user: the first and a second rotation keep every key pgrotate does not own', async () => {
      const initial = `initial-${randomUUID()}`;
      const role = await fx.createRole(`kept_one_${providerName}_${fx.suffix}`, { password: initial });
      const secret = store.secretName();
      await store.seed(secret, ownersValue(role, initial));
      const { path, env } = config([{ name: 'one', target: 'main', role, provider: providerName, secret }]);

      const seen = [initial];
      for (let i = 0; i < 2; i++) {
        const r = await fx.cli(['--config', path, 'rotate', 'one', '--json'], env);
        expect(r.code, r.stderr).toBe(0);
        const current = (await store.read(secret)) as Record<string, unknown>;
        expect(Object.keys(current).sort()).toEqual([...OWNED, ...Object.keys(store.keys)].sort());
        expect(current).toMatchObject({
          ...store.keys,
          username: role,
          dbname: fx.targetDb,
          engine: 'postgres',
          rotationId: rotationIdOf(r.stdout),
        });
        expect(await fx.canLogin(role, current.password as string)).toBe(true);
        // No earlier password was carried on into some other key.
        for (const old of seen) expect(JSON.stringify(current)).not.toContain(old);
        const previous = await store.readPrevious(secret);
        expect(previous).toMatchObject({ ...store.keys, password: seen.at(-1) });
        seen.push(current.password as string);
        for (const p of seen) expect(r.stderr + r.stdout).not.toContain(p);
      }
    });

    it('alternating: the keys follow the credential from role to role', async () => {
      const owner = `kept_own_${providerName}_${fx.suffix}`;
      const c = await fx.rotatorClient('postgres');
      await c.query(`CREATE ROLE ${owner} NOLOGIN`);
      await c.end();
      const initial = `initial-${randomUUID()}`;
      const a = await fx.createRole(`kept_a_${providerName}_${fx.suffix}`, { inRole: owner, password: initial });
      const b = await fx.createRole(`kept_b_${providerName}_${fx.suffix}`, { inRole: owner });
      const secret = store.secretName();
      await store.seed(secret, ownersValue(a, initial));
      const { path, env } = config([
        {
          name: 'alt',
          target: 'main',
          strategy: 'alternating',
          roles: [a, b],
          gracePeriod: '1h',
          provider: providerName,
          secret,
        },
      ]);
      const users: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await fx.cli(['--config', path, 'rotate', 'alt'], env);
        expect(r.code, r.stderr).toBe(0);
        const current = (await store.read(secret)) as Record<string, unknown>;
        expect(current).toMatchObject(store.keys);
        // Every turn has a previous role (the seeded one first): its expiry is in the secret.
        expect(Object.keys(current).sort()).toEqual(
          [...OWNED, 'previousValidUntil', ...Object.keys(store.keys)].sort(),
        );
        expect(await fx.canLogin(current.username as string, current.password as string)).toBe(true);
        users.push(current.username as string);
      }
      expect(users).toEqual([b, a, b]);
    });

    it('a crash after stage: the pending value already carries the keys, and the resumed promote keeps them', async () => {
      const initial = `initial-${randomUUID()}`;
      const role = await fx.createRole(`kept_crash_${providerName}_${fx.suffix}`, { password: initial });
      const secret = store.secretName();
      await store.seed(secret, ownersValue(role, initial));
      const { path, env } = config([{ name: 'crash', target: 'main', role, provider: providerName, secret }]);

      const crashed = await fx.cliProcess(['--config', path, 'rotate', 'crash'], {
        ...env,
        PGROTATE_FAILPOINT: 'after-stage',
      });
      expect(crashed.signal).toBe('SIGKILL');
      const pending = await store.provider().getPending(secret);
      expect(pending?.extra).toEqual(store.keys);
      expect(await store.read(secret)).toEqual(ownersValue(role, initial));

      const rerun = await fx.cliProcess(['--config', path, 'rotate', 'crash', '--json'], env);
      expect(rerun.code, rerun.stderr).toBe(0);
      expect(JSON.parse(rerun.stdout)).toMatchObject({
        results: [{ rotationId: pending?.rotationId, resumed: true }],
      });
      const current = (await store.read(secret)) as Record<string, unknown>;
      expect(current).toMatchObject({ ...store.keys, password: pending?.password, rotationId: pending?.rotationId });
      expect(await fx.canLogin(role, current.password as string)).toBe(true);
    });

    it('a kept key holding the current password is refused, naming account, secret and key; nothing changes', async () => {
      const initial = `initial-${randomUUID()}`;
      const role = await fx.createRole(`kept_url_${providerName}_${fx.suffix}`, { password: initial });
      const secret = store.secretName();
      const value = {
        ...ownersValue(role, initial),
        DATABASE_URL: `postgres://${role}:${initial}@${fx.server.host}:${fx.server.port}/${fx.targetDb}`,
      };
      await store.seed(secret, value);
      const { path, env } = config([{ name: 'url', target: 'main', role, provider: providerName, secret }]);
      const r = await fx.cli(['--config', path, 'rotate', 'url'], env);
      expect(r.code).toBe(1);
      // The log line is JSON, so the key's quotes may come escaped.
      expect(r.stderr).toMatch(
        new RegExp(
          `account url: secret ${secret} in provider ${providerName} has key\\(s\\) \\\\?"DATABASE_URL\\\\?" holding the current password.*Nothing was changed`,
        ),
      );
      expect(r.stderr + r.stdout).not.toContain(initial);
      expect(await store.read(secret)).toEqual(value);
      expect(await store.versions(secret)).toBe(1);
      expect(await store.provider().getPending(secret)).toBeNull();
      expect(await fx.canLogin(role, initial)).toBe(true);
    });
  });
}

describe('kept secret keys: an existing value that is not a JSON object (aws, moto)', () => {
  let fx: PgFixture;
  const store = awsStore();
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await store.close();
    await fx?.cleanup();
  });

  for (const [kind, text] of [
    ['a JSON array', '["billing", "s3cr3t-array-value"]'],
    ['a JSON string', '"s3cr3t-string-value"'],
    ['a JSON number', '42'],
    ['not JSON', 'user=billing password=s3cr3t-text-value'],
  ] as const) {
    it(`${kind} is refused before anything changes, naming account and secret`, async () => {
      const initial = `initial-${randomUUID()}`;
      const role = await fx.createRole(`kept_shape_${kind.replace(/\W/g, '_')}_${fx.suffix}`, { password: initial });
      const secret = awsSecretName('shape');
      await store.seedText?.(secret, text);
      const { path, env } = fx.writeConfig({
        accounts: [{ name: 'shape', target: 'main', role, provider: 'aws', secret }],
        providers: store.providers(),
      });
      const r = await fx.cli(['--config', path, 'rotate', 'shape'], { ...env, ...store.env() });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `account shape: could not read the current value of secret ${secret} in provider aws: .*(not JSON|not a pgrotate credential)`,
        ),
      );
      expect(r.stderr).not.toMatch(/s3cr3t/);
      expect(await store.versions(secret)).toBe(1);
      expect(await fx.canLogin(role, initial)).toBe(true);
    });
  }
});
