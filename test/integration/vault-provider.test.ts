import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { VaultProvider, createVaultProvider } from '../../providers/vault/vault-provider.js';
import type { VaultAuthMethod } from '../../providers/vault/vault-auth.js';
import type { SecretValue } from '../../src/core/provider/secret-provider.js';
import { describeProviderConformance, sampleValue } from '../conformance/provider-conformance.js';
import { baoApi, startBaoServer, type BaoServerInfo } from '../support/bao-server.js';
import { freePort } from '../support/free-port.js';
import { service } from '../support/provided.js';

// The Vault/OpenBao provider against a real OpenBao dev server: the conformance suite, where
// values live in KV v2, and every kind of bad input.

const bao = () => service<BaoServerInfo>('bao');
const quietLog = () => createLogger(new Redactor(), { level: 'silent' });

function provider(
  opts: {
    token?: string;
    mount?: string;
    address?: string;
    auth?: VaultAuthMethod;
    namespace?: string;
    redactor?: Redactor;
    rotationMetadata?: boolean;
  } = {},
): VaultProvider {
  return new VaultProvider({
    name: 'bao',
    address: opts.address ?? bao().address,
    mount: opts.mount ?? 'secret',
    auth: opts.auth ?? { method: 'token', token: opts.token ?? bao().rootToken },
    namespace: opts.namespace,
    timeoutMs: 3000,
    rotationMetadata: opts.rotationMetadata,
    redactor: opts.redactor ?? new Redactor(),
    log: quietLog(),
  });
}

/** Read a secret the way an application does: GET <mount>/data/<path>, latest version. */
async function consumerRead(path: string, mount = 'secret'): Promise<SecretValue | null> {
  const url = `${bao().address}/v1/${mount}/data/${path.split('/').map(encodeURIComponent).join('/')}`;
  const res = await fetch(url, { headers: { 'X-Vault-Token': bao().rootToken } });
  if (res.status === 404) return null;
  const body = (await res.json()) as { data: { data: SecretValue } };
  return body.data.data;
}

const root = () => baoApi(bao().address, bao().rootToken);

describeProviderConformance('vault (OpenBao KV v2)', async () => {
  const p = provider();
  const run = randomUUID().slice(0, 8);
  let n = 0;
  return {
    provider: p,
    secretName: () => `conf-${run}/app-${n++}`,
    consumerRead: (s) => consumerRead(s),
    seedRaw: async (secret, text) => {
      // KV v2 stores a JSON object: a JSON object is stored as its fields, any other text as a
      // single string field (the way people paste a JSON blob into one key).
      let data: unknown;
      try {
        data = JSON.parse(text);
      } catch {
        data = { value: text };
      }
      const r = await root()('POST', `secret/data/${secret}`, { data });
      expect(r.status).toBe(200);
    },
    cleanup: async () => p.close(),
  };
});

describe('vault provider: where values live', () => {
  let p: VaultProvider;
  beforeAll(() => {
    // Rotation facts in custom metadata are opt-in (test/integration/vault-provider-calls.test.ts has it off).
    p = provider({ rotationMetadata: true });
  });
  afterAll(async () => p.close());

  it('pending lives under pgrotate-pending/, promote writes a new KV version with check-and-set, and pending is destroyed', async () => {
    const s = `layout-${randomUUID().slice(0, 8)}/app`;
    const v1 = sampleValue();
    await p.stagePending(s, v1);
    const pendingRaw = await root()('GET', `secret/data/pgrotate-pending/${s}`);
    expect(pendingRaw.status).toBe(200);
    expect((pendingRaw.json.data as { data: SecretValue }).data.password).toBe(v1.password);
    await p.promotePending(s, v1.rotationId);
    const meta = await root()('GET', `secret/metadata/${s}`);
    const md = meta.json.data as { current_version: number; custom_metadata: Record<string, string> };
    expect(md.current_version).toBe(1);
    expect(md.custom_metadata).toMatchObject({
      pgrotate_rotation_id: v1.rotationId,
      pgrotate_rotated_at: v1.rotatedAt,
    });
    // All versions of the pending path are gone, not just soft-deleted.
    expect((await root()('GET', `secret/metadata/pgrotate-pending/${s}`)).status).toBe(404);

    const v2 = sampleValue();
    await p.stagePending(s, v2);
    await p.promotePending(s, v2.rotationId);
    const latest = (await root()('GET', `secret/data/${s}`)).json.data as {
      data: SecretValue;
      metadata: { version: number };
    };
    expect(latest.metadata.version).toBe(2);
    expect(latest.data).toEqual({ ...v2 });
    expect((await p.getPrevious(s))?.password).toBe(v1.password);
    // Custom metadata someone else set is kept (merge patch).
    await root()('PATCH', `secret/metadata/${s}`, { custom_metadata: { owner: 'team-billing' } });
    const v3 = sampleValue();
    await p.stagePending(s, v3);
    await p.promotePending(s, v3.rotationId);
    const md3 = (await root()('GET', `secret/metadata/${s}`)).json.data as { custom_metadata: Record<string, string> };
    expect(md3.custom_metadata).toMatchObject({ owner: 'team-billing', pgrotate_rotation_id: v3.rotationId });
  });

  it('a concurrent writer between read and promote is detected by check-and-set and never overwritten', async () => {
    const s = `cas-${randomUUID().slice(0, 8)}/app`;
    const v1 = sampleValue();
    await p.stagePending(s, v1);
    await p.promotePending(s, v1.rotationId);
    const v2 = sampleValue();
    await p.stagePending(s, v2);
    // Race: another writer lands a new version after the provider has read version 1. The
    // window is reproduced deterministically by delaying the provider's write request.
    const realFetchWrite = (p as unknown as { write: (...a: unknown[]) => Promise<void> }).write.bind(p);
    (p as unknown as { write: (...a: unknown[]) => Promise<void> }).write = async (...a: unknown[]) => {
      await root()('POST', `secret/data/${s}`, {
        data: { username: 'someone-else', password: 'their-manual-password' },
      });
      return realFetchWrite(...a);
    };
    try {
      await expect(p.promotePending(s, v2.rotationId)).rejects.toThrow(
        new RegExp(`secret ${s} was changed by another writer.*expected version 1`),
      );
    } finally {
      (p as unknown as { write: unknown }).write = realFetchWrite;
    }
    expect((await consumerRead(s))?.username).toBe('someone-else');
    // The pending value survives for the resumed rotation to decide about.
    expect((await p.getPending(s))?.rotationId).toBe(v2.rotationId);
  });

  it('secret paths with spaces and unicode round-trip and are readable by the bao CLI; ".." and friends are refused', async () => {
    const odd = `odd-${randomUUID().slice(0, 6)}/my app/ünïcødé-密码`;
    const v = sampleValue();
    await p.stagePending(odd, v);
    await p.promotePending(odd, v.rotationId);
    expect((await p.getCurrent(odd))?.password).toBe(v.password);
    expect((await consumerRead(odd))?.password).toBe(v.password);
    const { execFileSync } = await import('node:child_process');
    const cli = execFileSync(bao().bin, ['kv', 'get', '-format=json', `secret/${odd}`], {
      env: { ...process.env, BAO_ADDR: bao().address, BAO_TOKEN: bao().rootToken },
      encoding: 'utf8',
    });
    expect((JSON.parse(cli) as { data: { data: SecretValue } }).data.data.password).toBe(v.password);
    for (const bad of [
      'pg/../admin',
      '../x',
      'pg/./x',
      '/pg/x',
      'pg/x/',
      'pg//x',
      'pg/\nx',
      ' pg/x',
      'pgrotate-pending/pg/x',
    ]) {
      await expect(p.getCurrent(bad), bad).rejects.toThrow(/not a usable Vault path|reserves for pending/);
      await expect(p.stagePending(bad, sampleValue()), bad).rejects.toThrow(/provider bao: secret/);
    }
  });
});

describe('vault provider: bad input', () => {
  it('a token without the capability: 403 names the path and the missing capability', async () => {
    const policy = `pol-${randomUUID().slice(0, 8)}`;
    await root()('PUT', `sys/policies/acl/${policy}`, {
      policy: 'path "secret/data/readonly/*" { capabilities = ["read"] }',
    });
    const tok = await root()('POST', 'auth/token/create', { policies: [policy], ttl: '10m' });
    const token = (tok.json.auth as { client_token: string }).client_token;
    const redactor = new Redactor();
    const p = provider({ token, redactor });
    await expect(p.getCurrent('pg/app')).rejects.toThrow(
      /cannot read secret pg\/app: permission denied .*"read" capability on path "secret\/data\/pg\/app"/,
    );
    // Staging writes first (create only if absent), so the missing capability is "create".
    await expect(p.stagePending('readonly/app', sampleValue())).rejects.toThrow(
      /"create" capability on path "secret\/data\/pgrotate-pending\/readonly\/app"/,
    );
    const wrong = provider({ token: 'hvs.not-a-real-token-0000' });
    const err = await wrong.getCurrent('pg/app').catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    // A token that does not exist is no policy problem: the message says what happened.
    expect((err as Error).message).toMatch(
      /provider bao: cannot read secret pg\/app: the Vault token is expired or revoked/,
    );
    expect((err as Error).message).not.toMatch(/capability/);
    expect((err as Error).message).not.toContain('not-a-real-token');
    expect((err as { secret?: string }).secret).toBe('pg/app');
    await p.close();
    await wrong.close();
  });

  it('an unreachable server is a ProviderError naming the address and the secret', async () => {
    const port = await freePort();
    const p = provider({ address: `http://127.0.0.1:${port}` });
    await expect(p.getCurrent('pg/app')).rejects.toThrow(
      new RegExp(`cannot read secret pg/app: Vault at http://127.0.0.1:${port} is unreachable \\(ECONNREFUSED\\)`),
    );
    await expect(p.stagePending('pg/app', sampleValue())).rejects.toThrow(/unreachable/);
  });

  it('a sealed server is reported as sealed', async () => {
    const sealed = await startBaoServer({ label: 'sealed' });
    try {
      const p = provider({ address: sealed.address, token: sealed.rootToken });
      const v = sampleValue();
      await p.stagePending('pg/app', v);
      const { execFileSync } = await import('node:child_process');
      execFileSync(sealed.bin, ['operator', 'seal'], {
        env: { ...process.env, BAO_ADDR: sealed.address, BAO_TOKEN: sealed.rootToken },
        stdio: 'ignore',
      });
      await expect(p.promotePending('pg/app', v.rotationId)).rejects.toThrow(
        new RegExp(`secret pg/app: Vault at ${sealed.address} is sealed`),
      );
      await expect(p.getCurrent('pg/app')).rejects.toThrow(/is sealed/);
      await p.close();
    } finally {
      await sealed.stop();
    }
  });

  it('a missing mount and a KV version 1 mount are clear errors', async () => {
    const missing = provider({ mount: `nomount-${randomUUID().slice(0, 6)}` });
    await expect(missing.getCurrent('pg/app')).rejects.toThrow(/mount nomount-\w+ does not exist/);
    const kv1 = `kv1-${randomUUID().slice(0, 6)}`;
    expect((await root()('POST', `sys/mounts/${kv1}`, { type: 'kv', options: { version: '1' } })).status).toBe(204);
    const p = provider({ mount: kv1 });
    await expect(p.stagePending('pg/app', sampleValue())).rejects.toThrow(
      new RegExp(`mount ${kv1} is a KV version 1 mount.*secret pg/app`),
    );
    await expect(p.getCurrent('pg/app')).rejects.toThrow(/KV version 1/);
    // Nothing was written to the v1 mount.
    expect((await root()('LIST', `${kv1}`)).status).toBe(404);
    // Concurrent first calls share the mount check; each failure still names its own secret.
    const fresh = provider({ mount: kv1 });
    const errors = await Promise.all(
      ['pg/one', 'pg/two', 'pg/three'].map((s) =>
        fresh.getCurrent(s).then(
          () => null,
          (e: Error & { secret?: string }) => e,
        ),
      ),
    );
    expect(errors.map((e) => e?.message.match(/\(secret ([^)]+)\)/)?.[1])).toEqual(['pg/one', 'pg/two', 'pg/three']);
    expect(errors.map((e) => e?.secret)).toEqual(['pg/one', 'pg/two', 'pg/three']);
  });

  it('config: token or auth is required, not both', () => {
    const deps = { redactor: new Redactor(), log: quietLog() };
    const base = {
      type: 'vault' as const,
      address: bao().address,
      mount: 'secret',
      pendingPrefix: 'pgrotate-pending',
      timeout: 1000,
      rotationMetadata: false,
    };
    expect(() => createVaultProvider('bao', base, deps)).toThrow(
      /providers\.bao: a vault provider needs "token" or "auth"/,
    );
    expect(() =>
      createVaultProvider('bao', { ...base, token: 'x', auth: { method: 'token', token: 'y' } }, deps),
    ).toThrow(/either "token" or "auth"/);
  });
});
