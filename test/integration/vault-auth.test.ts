import { createSign, generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { VaultProvider } from '../../providers/vault/vault-provider.js';
import type { VaultAuthMethod } from '../../providers/vault/vault-auth.js';
import { sampleValue } from '../conformance/provider-conformance.js';
import { baoApi, startBaoServer, type BaoServerInfo } from '../support/bao-server.js';
import { service } from '../support/provided.js';

// Authentication against a real OpenBao server: the least-privilege policy from docs/providers.md,
// AppRole and Kubernetes-style service-account JWT logins with re-login when the token's TTL
// runs out, renewal of a given token, namespaces and a TLS listener with its own CA.

const bao = () => service<BaoServerInfo>('bao');
const root = () => baoApi(bao().address, bao().rootToken);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The policy docs/providers.md documents, for secrets under `pg/` in mount `secret`. */
const PGROTATE_POLICY = `
path "secret/data/pg/*"                      { capabilities = ["create", "update", "read"] }
path "secret/metadata/pg/*"                  { capabilities = ["patch"] }
path "secret/data/pgrotate-pending/pg/*"     { capabilities = ["create", "update", "read"] }
path "secret/metadata/pgrotate-pending/pg/*" { capabilities = ["delete"] }
`;

function make(
  auth: VaultAuthMethod,
  extra: {
    address?: string;
    namespace?: string;
    caFile?: string;
    warnings?: string[];
    rotationMetadata?: boolean;
  } = {},
): { p: VaultProvider; redactor: Redactor } {
  const redactor = new Redactor();
  const log = createLogger(redactor, { level: 'silent' });
  const warnings = extra.warnings;
  const wrapped = warnings
    ? { ...log, warn: (o: unknown, msg?: string) => warnings.push(`${msg ?? ''} ${JSON.stringify(o)}`) }
    : log;
  const p = new VaultProvider({
    name: 'bao',
    address: extra.address ?? bao().address,
    mount: 'secret',
    auth,
    namespace: extra.namespace,
    caFile: extra.caFile,
    rotationMetadata: extra.rotationMetadata,
    timeoutMs: 3000,
    redactor,
    log: wrapped as typeof log,
  });
  return { p, redactor };
}

/** A full rotation's provider calls; returns the promoted value. */
async function cycle(p: VaultProvider, secret: string) {
  const v = sampleValue();
  await p.stagePending(secret, v);
  await p.promotePending(secret, v.rotationId);
  expect((await p.getCurrent(secret))?.password).toBe(v.password);
  expect(await p.getPending(secret)).toBeNull();
  return v;
}

describe('vault provider: auth methods and policy', () => {
  const run = randomUUID().slice(0, 8);
  const policy = `pgrotate-${run}`;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pgrotate-vault-auth-'));
    expect((await root()('PUT', `sys/policies/acl/${policy}`, { policy: PGROTATE_POLICY })).status).toBe(204);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the documented policy suffices for every operation; consumers limited to pg/* cannot read pending', async () => {
    const tok = await root()('POST', 'auth/token/create', { policies: [policy], ttl: '10m' });
    const warnings: string[] = [];
    const { p } = make(
      { method: 'token', token: (tok.json.auth as { client_token: string }).client_token },
      // With the opt-in metadata write, so the documented policy is shown to cover it too.
      { warnings, rotationMetadata: true },
    );
    const s = `pg/policy-${run}`;
    const v1 = await cycle(p, s);
    const v2 = await cycle(p, s);
    expect((await p.getPrevious(s))?.password).toBe(v1.password);
    const v3 = sampleValue();
    await p.stagePending(s, v3);
    await p.discardPending(s, v3.rotationId);
    expect(await p.getPending(s)).toBeNull();
    expect(warnings).toEqual([]);
    const md = (await root()('GET', `secret/metadata/${s}`)).json.data as { custom_metadata: Record<string, string> };
    expect(md.custom_metadata.pgrotate_rotation_id).toBe(v2.rotationId);

    // An application's policy: read on its secrets. The pending prefix is outside it.
    await root()('PUT', `sys/policies/acl/app-${run}`, {
      policy: 'path "secret/data/pg/*" { capabilities = ["read"] }',
    });
    const appTok = (
      (await root()('POST', 'auth/token/create', { policies: [`app-${run}`], ttl: '10m' })).json.auth as {
        client_token: string;
      }
    ).client_token;
    const app = baoApi(bao().address, appTok);
    await p.stagePending(s, sampleValue());
    expect((await app('GET', `secret/data/${s}`)).status).toBe(200);
    expect((await app('GET', `secret/data/pgrotate-pending/${s}`)).status).toBe(403);
    await p.close();
  });

  it('AppRole: logs in, and logs in again when the token TTL runs out', async () => {
    const mount = `approle-${run}`;
    expect((await root()('POST', `sys/auth/${mount}`, { type: 'approle' })).status).toBe(204);
    await root()('POST', `auth/${mount}/role/pgrotate`, {
      token_policies: [policy],
      token_ttl: '3s',
      token_max_ttl: '3s',
    });
    const roleId = ((await root()('GET', `auth/${mount}/role/pgrotate/role-id`)).json.data as { role_id: string })
      .role_id;
    const secretId = (
      (await root()('POST', `auth/${mount}/role/pgrotate/secret-id`, {})).json.data as { secret_id: string }
    ).secret_id;
    const { p, redactor } = make({ method: 'approle', roleId, secretId, mount });
    // Each cycle in a redaction scope, as a rotation runs: its passwords are forgotten after it.
    await redactor.scoped(() => cycle(p, `pg/approle-${run}`));
    const before = p.authCounters.logins;
    expect(before).toBeGreaterThanOrEqual(1);
    await sleep(3500);
    // Every token so far has expired by now; the provider must have logged in again.
    await redactor.scoped(() => cycle(p, `pg/approle-${run}`));
    expect(p.authCounters.logins).toBeGreaterThan(before);
    expect(redactor.scrub(`x ${secretId} y`)).toBe('x [REDACTED] y');
    // The role id, the secret id and the current login token: the token outlives the scope that
    // logged in, and the expired one it replaced is forgotten (a months-old worker logs in often).
    expect(redactor.size).toBe(3);
    await p.close();

    const bad = make({ method: 'approle', roleId, secretId: 'not-the-secret-id-0000', mount }).p;
    const err = await bad.getCurrent(`pg/approle-${run}`).catch((e: Error) => e);
    expect((err as Error).message).toMatch(
      new RegExp(`provider bao: approle login at auth/${mount}/login was refused \\(HTTP 400`),
    );
    expect((err as Error).message).not.toContain('not-the-secret-id');
  });

  it('Kubernetes: logs in with the service-account JWT from its file and re-reads the file at re-login', async () => {
    // OpenBao's kubernetes auth method needs a Kubernetes API server (TokenReview), which cannot
    // run here. The JWT auth method mounted as the kubernetes login path validates a service
    // account token's signature and claims on the server side, and the client's exchange is
    // the same: POST auth/<mount>/login {role, jwt}.
    const mount = `k8s-${run}`;
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect((await root()('POST', `sys/auth/${mount}`, { type: 'jwt' })).status).toBe(204);
    const cfg = await root()('POST', `auth/${mount}/config`, {
      jwt_validation_pubkeys: [publicKey.export({ type: 'spki', format: 'pem' })],
    });
    expect(cfg.status, JSON.stringify(cfg.json)).toBe(204);
    const subject = 'system:serviceaccount:pgrotate:pgrotate';
    const role = await root()('POST', `auth/${mount}/role/pgrotate`, {
      role_type: 'jwt',
      bound_audiences: ['https://kubernetes.default.svc'],
      bound_subject: subject,
      user_claim: 'sub',
      token_policies: [policy],
      token_ttl: '3s',
      token_max_ttl: '3s',
      expiration_leeway: -1,
      clock_skew_leeway: -1,
      not_before_leeway: -1,
    });
    expect(role.status, JSON.stringify(role.json)).toBe(204);
    const jwt = (lifetimeS: number) => {
      const now = Math.floor(Date.now() / 1000);
      const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const body = `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc({ iss: 'https://kubernetes.default.svc', sub: subject, aud: ['https://kubernetes.default.svc'], iat: now, nbf: now, exp: now + lifetimeS })}`;
      const sig = createSign('RSA-SHA256').update(body).sign(privateKey).toString('base64url');
      return `${body}.${sig}`;
    };
    const jwtFile = join(dir, 'token');
    const first = jwt(3);
    writeFileSync(jwtFile, `${first}\n`);
    const { p, redactor } = make({ method: 'kubernetes', role: 'pgrotate', jwtFile, mount });
    await cycle(p, `pg/k8s-${run}`);
    const before = p.authCounters.logins;
    expect(before).toBeGreaterThanOrEqual(1);
    expect(redactor.scrub(first)).toBe('[REDACTED]');
    // The kubelet replaces the projected token; the first one has expired by the next login.
    writeFileSync(jwtFile, jwt(600));
    await sleep(3500);
    // The server now refuses the first token, so the next login must use the file's new content.
    expect(
      (await baoApi(bao().address, '')('POST', `auth/${mount}/login`, { role: 'pgrotate', jwt: first })).status,
    ).toBe(400);
    await cycle(p, `pg/k8s-${run}`);
    expect(p.authCounters.logins).toBeGreaterThan(before);
    await p.close();

    const missing = make({ method: 'kubernetes', role: 'pgrotate', jwtFile: join(dir, 'absent'), mount }).p;
    await expect(missing.getCurrent('pg/x')).rejects.toThrow(
      /cannot read the Kubernetes service-account token .*absent \(ENOENT\)/,
    );
  });

  it('token: a renewable token is renewed (renew-self) before its TTL runs out', async () => {
    const tok = await root()('POST', 'auth/token/create', {
      policies: [policy],
      ttl: '3s',
      explicit_max_ttl: '5m',
      renewable: true,
    });
    const token = (tok.json.auth as { client_token: string }).client_token;
    const { p } = make({ method: 'token', token });
    await cycle(p, `pg/renew-${run}`);
    // Idle past the original TTL: the renewal timer keeps the token alive.
    await sleep(4500);
    expect(p.authCounters.renewals).toBeGreaterThanOrEqual(1);
    await cycle(p, `pg/renew-${run}`);
    const look = await root()('POST', 'auth/token/lookup', { token });
    expect((look.json.data as { ttl: number }).ttl).toBeGreaterThan(0);
    await p.close();
  });

  it('namespaces: the X-Vault-Namespace header scopes every call', async () => {
    const ns = `ns${run}`;
    expect((await root()('POST', `sys/namespaces/${ns}`, {})).status).toBe(200);
    const inNs = baoApi(bao().address, bao().rootToken, ns);
    expect((await inNs('POST', 'sys/mounts/secret', { type: 'kv', options: { version: '2' } })).status).toBe(204);
    const { p } = make({ method: 'token', token: bao().rootToken }, { namespace: ns });
    const s = `pg/ns-${run}`;
    const v = await cycle(p, s);
    expect(((await inNs('GET', `secret/data/${s}`)).json.data as { data: { password: string } }).data.password).toBe(
      v.password,
    );
    expect((await root()('GET', `secret/data/${s}`)).status).toBe(404);
    await p.close();
  });

  it('TLS: trusts the server through caFile, and refuses it without', async () => {
    const tls = await startBaoServer({ label: 'tls', tls: true });
    try {
      const { p } = make(
        { method: 'token', token: tls.rootToken },
        { address: tls.address, caFile: tls.caFile as string },
      );
      await cycle(p, 'pg/tls');
      await p.close();
      const untrusted = make({ method: 'token', token: tls.rootToken }, { address: tls.address }).p;
      await expect(untrusted.getCurrent('pg/tls')).rejects.toThrow(
        /cannot read secret pg\/tls: Vault at https:\/\/127\.0\.0\.1:\d+ is unreachable \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)/,
      );
      const noFile = () =>
        make({ method: 'token', token: 'x' }, { address: tls.address, caFile: join(dir, 'no-ca.pem') });
      expect(noFile).toThrow(/provider bao: cannot read caFile .*no-ca\.pem \(ENOENT\)/);
    } finally {
      await tls.stop();
    }
  });
});
