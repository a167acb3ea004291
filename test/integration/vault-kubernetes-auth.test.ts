import { createSign, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baoApi, type BaoServerInfo } from '../support/bao-server.js';
import { CHART_DIR, runHelm } from '../support/helm.js';
import { kubectl, kubeServer } from '../support/kube-server.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';

// OpenBao's real `kubernetes` auth method against the real test API server: OpenBao checks every
// login's service-account token with a TokenReview, and the role is bound to the ServiceAccount
// that `helm install` of the chart created. pgrotate reads the token at the path the chart's
// projected volume uses (here a file the test fills from the TokenRequest API, as the kubelet
// would) and rotates. Expired, wrong-audience and unbound tokens fail fast and change nothing.

const bao = () => service<BaoServerInfo>('bao');
const root = () => baoApi(bao().address, bao().rootToken);

/** JWT parts of a token (header and claims), for building a look-alike with other claims. */
function decode(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const [h, c] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h ?? '', 'base64url').toString()) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(c ?? '', 'base64url').toString()) as Record<string, unknown>,
  };
}

describe('vault provider: OpenBao kubernetes auth against a real API server (TokenReview)', () => {
  const run = randomUUID().slice(0, 8);
  const ns = `vk-${run}`;
  const release = `vk${run}`;
  const audience = `openbao-${run}`;
  const mount = `kubernetes-${run}`;
  const vaultRole = `pgrotate-${run}`;
  const policy = `pgrotate-k8s-${run}`;
  let fx: PgFixture;
  let dir: string;
  let chartSa: string;
  let expirationSeconds: number;

  beforeAll(async () => {
    const kube = kubeServer();
    fx = await createPgFixture(pgServer('pg15'));
    dir = mkdtempSync(join(tmpdir(), 'pgrotate-vault-k8s-'));
    // The chart, installed as an operator would (CronJob mode, the projected Vault token enabled).
    const install = runHelm([
      'install',
      release,
      CHART_DIR,
      '--kubeconfig',
      kube.kubeconfig,
      '-n',
      ns,
      '--create-namespace',
      '--set',
      'vaultToken.enabled=true',
      '--set',
      `vaultToken.audience=${audience}`,
    ]);
    expect(install.code, install.stderr).toBe(0);
    const cron = JSON.parse(kubectl(['-n', ns, 'get', 'cronjobs', '-o', 'json'])) as {
      items: Array<{
        spec: {
          jobTemplate: {
            spec: {
              template: {
                spec: {
                  serviceAccountName: string;
                  volumes: Array<{
                    name: string;
                    projected?: {
                      sources: Array<{ serviceAccountToken?: { audience: string; expirationSeconds: number } }>;
                    };
                  }>;
                };
              };
            };
          };
        };
      }>;
    };
    const pod = cron.items[0]?.spec.jobTemplate.spec.template.spec;
    chartSa = pod?.serviceAccountName ?? '';
    const projected = pod?.volumes.find((v) => v.name === 'vault-token')?.projected?.sources[0]?.serviceAccountToken;
    expect(chartSa).not.toBe('');
    expect(projected?.audience).toBe(audience);
    expirationSeconds = projected?.expirationSeconds ?? 0;
    expect(expirationSeconds).toBeGreaterThanOrEqual(600);

    // OpenBao's token reviewer: a ServiceAccount allowed to create TokenReviews.
    kubectl(['-n', ns, 'create', 'serviceaccount', 'bao-reviewer']);
    kubectl([
      'create',
      'clusterrolebinding',
      `bao-reviewer-${run}`,
      '--clusterrole=system:auth-delegator',
      `--serviceaccount=${ns}:bao-reviewer`,
    ]);
    const reviewerJwt = kubectl(['-n', ns, 'create', 'token', 'bao-reviewer', '--duration=1h']).trim();
    kubectl(['-n', ns, 'create', 'serviceaccount', 'other']);

    expect(
      (
        await root()('PUT', `sys/policies/acl/${policy}`, {
          policy: `path "secret/data/k8s-${run}/*" { capabilities = ["create", "update", "read"] }
path "secret/metadata/k8s-${run}/*" { capabilities = ["patch"] }
path "secret/data/pgrotate-pending/k8s-${run}/*" { capabilities = ["create", "update", "read"] }
path "secret/metadata/pgrotate-pending/k8s-${run}/*" { capabilities = ["delete"] }`,
        })
      ).status,
    ).toBe(204);
    expect((await root()('POST', `sys/auth/${mount}`, { type: 'kubernetes' })).status).toBe(204);
    const cfg = await root()('POST', `auth/${mount}/config`, {
      kubernetes_host: kube.server,
      kubernetes_ca_cert: readFileSync(kube.caFile, 'utf8'),
      token_reviewer_jwt: reviewerJwt,
      disable_local_ca_jwt: true,
    });
    expect(cfg.status, JSON.stringify(cfg.json)).toBe(204);
    const role = await root()('POST', `auth/${mount}/role/${vaultRole}`, {
      bound_service_account_names: [chartSa],
      bound_service_account_namespaces: [ns],
      audience,
      token_policies: [policy],
      token_ttl: '10m',
    });
    expect(role.status, JSON.stringify(role.json)).toBe(204);
  }, 120_000);

  afterAll(async () => {
    runHelm(['uninstall', release, '--kubeconfig', kubeServer().kubeconfig, '-n', ns]);
    kubectl(['delete', 'clusterrolebinding', `bao-reviewer-${run}`, '--ignore-not-found']);
    kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
    await fx?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A config whose provider logs in with the token in `jwtFile`. */
  const setup = async (name: string, jwtFile: string) => {
    const role = await fx.createRole(`vk_${name}_${fx.suffix}`, { password: `initial-${name}-password-1` });
    const secret = `k8s-${run}/${name}`;
    const { path, env } = fx.writeConfig({
      accounts: [{ name, target: 'main', role, provider: 'bao', secret }],
      providers: {
        bao: {
          type: 'vault',
          address: bao().address,
          mount: 'secret',
          auth: { method: 'kubernetes', role: vaultRole, mount, jwtFile },
        },
      },
    });
    return { role, secret, path, env };
  };

  /** The token the kubelet would project for the chart's pod: TokenRequest, audience and lifetime from the chart. */
  const projectedToken = (sa = chartSa, aud = audience) =>
    kubectl(['-n', ns, 'create', 'token', sa, `--audience=${aud}`, `--duration=${expirationSeconds}s`]).trim();

  it('a token for the chart ServiceAccount logs in through TokenReview, and pgrotate rotates', async () => {
    const jwtFile = join(dir, 'token');
    const token = projectedToken();
    writeFileSync(jwtFile, `${token}\n`);
    const { role, secret, path, env } = await setup('ok', jwtFile);
    const r = await fx.cli(['--config', path, 'rotate', 'ok'], env);
    expect(r.code, r.stderr).toBe(0);
    const stored = (await root()('GET', `secret/data/${secret}`)).json.data as { data: { password: string } };
    expect(await fx.canLogin(role, stored.data.password)).toBe(true);
    // The service-account token is a credential too: never printed.
    expect(r.stdout + r.stderr).not.toContain(token);
    // OpenBao really asked the API server: the login's metadata names the ServiceAccount.
    const login = await baoApi(bao().address, '')('POST', `auth/${mount}/login`, { role: vaultRole, jwt: token });
    expect((login.json.auth as { metadata: Record<string, string> }).metadata).toMatchObject({
      service_account_name: chartSa,
      service_account_namespace: ns,
    });
  });

  const refused = async (name: string, token: string, reason: RegExp) => {
    const jwtFile = join(dir, `token-${name}`);
    writeFileSync(jwtFile, token);
    const { role, secret, path, env } = await setup(name, jwtFile);
    const verifier = await fx.stateQuery<{ v: string }>('SELECT rolpassword AS v FROM pg_authid WHERE rolname = $1', [
      role,
    ]);
    const t0 = Date.now();
    const r = await fx.cli(['--config', path, 'rotate', name, '--json'], env);
    const elapsed = Date.now() - t0;
    expect(r.code).not.toBe(0);
    expect(elapsed).toBeLessThan(10_000);
    const out = r.stdout + r.stderr;
    expect(out).toContain(name);
    expect(out).toMatch(new RegExp(`kubernetes login \\(role ${vaultRole}\\) at auth/${mount}/login was refused`));
    expect(out).toMatch(reason);
    // Permanent: a worker fails the job at once instead of retrying a refused login.
    const result = (JSON.parse(r.stdout) as { results: Array<{ error: { permanent: boolean } | null }> }).results[0];
    expect(result?.error?.permanent).toBe(true);
    expect(out).not.toContain(token);
    // Nothing changed: the role's verifier, the secret (never written) and the pending path.
    const after = await fx.stateQuery<{ v: string }>('SELECT rolpassword AS v FROM pg_authid WHERE rolname = $1', [
      role,
    ]);
    expect(after.rows[0]?.v).toBe(verifier.rows[0]?.v);
    expect((await root()('GET', `secret/data/${secret}`)).status).toBe(404);
    expect((await root()('GET', `secret/data/pgrotate-pending/${secret}`)).status).toBe(404);
  };

  it('an expired token is refused within seconds, naming the auth method and role; nothing changes', async () => {
    // Signed with the API server's own service-account key, claims of a real token but expired
    // a minute ago: the TokenReview itself says it is expired.
    const real = decode(projectedToken());
    const now = Math.floor(Date.now() / 1000);
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const body = `${enc(real.header)}.${enc({ ...real.claims, iat: now - 3600, nbf: now - 3600, exp: now - 60 })}`;
    const key = readFileSync(join(kubeServer().stateDir, 'pki', 'sa.key'));
    const expired = `${body}.${createSign('RSA-SHA256').update(body).sign(key).toString('base64url')}`;
    await refused('expired', expired, /token is expired/);
  });

  it('a token for another audience is refused', async () => {
    await refused(
      'audience',
      projectedToken(chartSa, 'https://kubernetes.default.svc'),
      /audience claim does not match/,
    );
  });

  it('a token of a ServiceAccount the role is not bound to is refused', async () => {
    await refused('unbound', projectedToken('other'), /service account name not authorized/);
  });
});
