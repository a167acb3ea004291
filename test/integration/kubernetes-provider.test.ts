import { randomUUID } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { Redactor } from '../../src/core/logging/redactor.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { PendingConflictError } from '../../src/core/provider/pending-conflict-error.js';
import { ProviderError, SecretFormatError } from '../../src/core/errors.js';
import { ConcurrentWriteError } from '../../providers/kubernetes/kubernetes-errors.js';
import {
  COMPANION_OF_LABEL,
  KubernetesProvider,
  MANAGED_BY_LABEL,
  createKubernetesProvider,
} from '../../providers/kubernetes/kubernetes-provider.js';
import { ALL_KINDS_KEPT, describeProviderConformance, sampleValue } from '../conformance/provider-conformance.js';
import {
  adminKubeConfig,
  consumerRead,
  freshNamespace,
  secretStrings,
  serviceAccountKubeconfig,
} from '../support/kube-test-client.js';
import { kubeServer } from '../support/kube-server.js';

// The kubernetes provider against a real kube-apiserver (test service `kube`): the conformance
// suite, then what Kubernetes adds: the Secret's layout, resourceVersion conflicts, RBAC.

const redactor = new Redactor();
const deps = () => ({ redactor, log: createLogger(redactor) });

/** A provider for `namespace` as the test API server's admin (from its kubeconfig). */
function adminProvider(namespace: string): KubernetesProvider {
  return createKubernetesProvider(
    'k8s',
    { type: 'kubernetes', namespace, kubeconfig: kubeServer().kubeconfig },
    deps(),
  );
}

const secretName = () => `db-${randomUUID().slice(0, 12)}`;

// Secret data holds strings: the same kept keys as the suite's, as a Secret can hold them.
const STRING_KEPT = Object.fromEntries(
  Object.entries(ALL_KINDS_KEPT).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
);

describeProviderConformance('kubernetes (kube-apiserver)', async () => {
  const namespace = await freshNamespace('conf');
  const api = adminKubeConfig().makeApiClient(CoreV1Api);
  return {
    provider: adminProvider(namespace),
    secretName,
    consumerRead: (secret) => consumerRead(api, namespace, secret),
    kept: STRING_KEPT,
    cleanup: async () => undefined,
  };
});

describe('kubernetes provider: what Kubernetes adds', () => {
  let namespace: string;
  let api: CoreV1Api;
  let p: KubernetesProvider;
  beforeAll(async () => {
    namespace = await freshNamespace('kprov');
    api = adminKubeConfig().makeApiClient(CoreV1Api);
    p = adminProvider(namespace);
  });

  it('the account Secret holds one string per field; pending and previous live in a labelled companion', async () => {
    const s = secretName();
    const v1 = sampleValue();
    await p.stagePending(s, v1);
    expect(await secretStrings(api, namespace, s)).toBeNull();
    const companion = await api.readNamespacedSecret({ name: `${s}-pgrotate`, namespace });
    expect(companion.metadata?.labels).toMatchObject({ [MANAGED_BY_LABEL]: 'pgrotate', [COMPANION_OF_LABEL]: s });
    await p.promotePending(s, v1.rotationId);
    expect(await secretStrings(api, namespace, s)).toEqual({
      username: v1.username,
      password: v1.password,
      host: v1.host,
      port: '5432',
      dbname: v1.dbname,
      engine: 'postgres',
      rotatedAt: v1.rotatedAt,
      rotationId: v1.rotationId,
    });
    // Pending is cleared by an update (no delete verb): the companion stays, without `pending`.
    expect(Object.keys((await api.readNamespacedSecret({ name: `${s}-pgrotate`, namespace })).data ?? {})).toEqual([]);
  });

  it("keeps a binary key byte for byte, and the Secret's type, labels and annotations", async () => {
    const s = secretName();
    const binary = Buffer.from([0, 255, 254, 1, 128]).toString('base64');
    await api.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: s, labels: { team: 'billing' }, annotations: { owner: 'payments' } },
        type: 'kubernetes.io/basic-auth',
        data: {
          username: Buffer.from('app_user').toString('base64'),
          password: Buffer.from('old-password').toString('base64'),
          'ca.crt': binary,
        },
      },
    });
    const current = await p.getCurrent(s);
    const v = sampleValue({ extra: current?.extra as Record<string, unknown> });
    await p.stagePending(s, v);
    await p.promotePending(s, v.rotationId);
    const after = await api.readNamespacedSecret({ name: s, namespace });
    expect(after.type).toBe('kubernetes.io/basic-auth');
    expect(after.metadata?.labels).toEqual({ team: 'billing' });
    expect(after.metadata?.annotations).toMatchObject({ owner: 'payments' });
    expect(after.data?.['ca.crt']).toBe(binary);
    expect(Buffer.from(after.data?.password ?? '', 'base64').toString()).toBe(v.password);
    expect((await p.getPrevious(s))?.password).toBe('old-password');
  });

  it('a writer that changes the Secret during promote is kept (re-read and merged), never overwritten', async () => {
    const s = secretName();
    const v1 = sampleValue();
    await p.stagePending(s, v1);
    await p.promotePending(s, v1.rotationId);
    const v2 = sampleValue();
    await p.stagePending(s, v2);
    // A real concurrent write: right before pgrotate's replace, another client updates the Secret.
    const racing = racingApi(api, namespace, s, 1);
    const raced = new KubernetesProvider({ name: 'k8s', namespace, api: racing.api, redactor });
    await raced.promotePending(s, v2.rotationId);
    expect(racing.writes()).toBe(1);
    const data = await secretStrings(api, namespace, s);
    expect(data).toMatchObject({ password: v2.password, rotationId: v2.rotationId, 'written-by': 'other-1' });
  });

  it('a writer that keeps racing fails the promote with ConcurrentWriteError; its value stays, pending stays', async () => {
    const s = secretName();
    const v1 = sampleValue();
    await p.stagePending(s, v1);
    await p.promotePending(s, v1.rotationId);
    const v2 = sampleValue();
    await p.stagePending(s, v2);
    const racing = racingApi(api, namespace, s, 10);
    const raced = new KubernetesProvider({ name: 'k8s', namespace, api: racing.api, redactor });
    const err = await raced.promotePending(s, v2.rotationId).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(ConcurrentWriteError);
    expect(err?.message).toMatch(/provider k8s: update Secret .*\/db-.*\(409 Conflict\); nothing was overwritten/);
    expect(err?.message).not.toContain(v2.password);
    const data = await secretStrings(api, namespace, s);
    expect(data).toMatchObject({ password: v1.password, 'written-by': 'other-2' });
    expect((await p.getPending(s))?.rotationId).toBe(v2.rotationId);
    // The rotation resumes later and promotes.
    await p.promotePending(s, v2.rotationId);
    expect(await secretStrings(api, namespace, s)).toMatchObject({ password: v2.password, 'written-by': 'other-2' });
  });

  it('two processes staging different rotations at once: one wins, the other gets PendingConflictError', async () => {
    const s = secretName();
    const a = sampleValue();
    const b = sampleValue();
    const results = await Promise.allSettled([
      adminProvider(namespace).stagePending(s, a),
      adminProvider(namespace).stagePending(s, b),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    // The loser either saw the winner's pending (PendingConflictError) or lost the create race and
    // then saw it on its one re-read.
    expect(lost[0]?.reason).toBeInstanceOf(PendingConflictError);
    const pending = await p.getPending(s);
    expect([a.rotationId, b.rotationId]).toContain(pending?.rotationId);
  });

  it('a Secret without username, or with a port that is not a number, is a clear error naming it', async () => {
    const noUser = secretName();
    await api.createNamespacedSecret({
      namespace,
      body: { metadata: { name: noUser }, stringData: { password: 'x-secret-value' } },
    });
    const e1 = await p.getCurrent(noUser).then(
      () => null,
      (e: Error) => e,
    );
    expect(e1).toBeInstanceOf(SecretFormatError);
    expect(e1?.message).toContain(`provider k8s: secret ${namespace}/${noUser} is not a pgrotate credential`);
    expect(e1?.message).toContain('username');
    expect(e1?.message).not.toContain('x-secret-value');
    const badPort = secretName();
    await api.createNamespacedSecret({
      namespace,
      body: { metadata: { name: badPort }, stringData: { username: 'u', password: 'x-secret-value', port: 'http' } },
    });
    await expect(p.getCurrent(badPort)).rejects.toThrow(
      `secret ${namespace}/${badPort} is not a pgrotate credential (key "port"`,
    );
  });

  it('a namespace that does not exist is a clear, permanent error naming provider, namespace and Secret', async () => {
    const gone = adminProvider('no-such-ns-pgrotate');
    const s = secretName();
    expect(await gone.getCurrent(s)).toBeNull();
    const err = await gone.stagePending(s, sampleValue()).then(
      () => null,
      (e: ProviderError) => e,
    );
    expect(err).toBeInstanceOf(ProviderError);
    expect(err?.message).toContain(
      `provider k8s: cannot create Secret no-such-ns-pgrotate/${s}-pgrotate: namespace no-such-ns-pgrotate does not exist (404 Not Found`,
    );
    expect(err?.permanent).toBe(true);
  });
});

describe('kubernetes provider: RBAC (a ServiceAccount with a real token)', () => {
  it('the documented Role (get, create, update, patch on secrets in one namespace) rotates; nothing else is allowed', async () => {
    const namespace = await freshNamespace('rbac');
    const other = await freshNamespace('rbac-other');
    const kubeconfig = await serviceAccountKubeconfig(namespace, ['get', 'create', 'update', 'patch']);
    const sa = createKubernetesProvider('k8s', { type: 'kubernetes', namespace, kubeconfig }, deps());
    const s = secretName();
    for (let i = 0; i < 2; i++) {
      const v = sampleValue();
      await sa.stagePending(s, v);
      await sa.promotePending(s, v.rotationId);
      expect((await sa.getCurrent(s))?.password).toBe(v.password);
    }
    const v = sampleValue();
    await sa.stagePending(s, v);
    await sa.discardPending(s, v.rotationId);
    expect(await sa.getPending(s)).toBeNull();
    // Another namespace is out of reach.
    const outside = createKubernetesProvider('k8s', { type: 'kubernetes', namespace: other, kubeconfig }, deps());
    await expect(outside.getCurrent(s)).rejects.toThrow(
      new RegExp(`provider k8s: may not get Secret ${other}/${s} \\(403 Forbidden: .*cannot get resource "secrets"`),
    );
  });

  it('a Role without update fails the second rotation clearly (403, verb, Secret, namespace, provider), permanent', async () => {
    const namespace = await freshNamespace('rbac-noupd');
    const kubeconfig = await serviceAccountKubeconfig(namespace, ['get', 'create', 'patch']);
    const sa = createKubernetesProvider('k8s', { type: 'kubernetes', namespace, kubeconfig }, deps());
    const s = secretName();
    const v1 = sampleValue();
    await sa.stagePending(s, v1);
    // Creating the account Secret works; clearing pending in the companion is an update.
    const err = await sa.promotePending(s, v1.rotationId).then(
      () => null,
      (e: ProviderError) => e,
    );
    expect(err?.message).toContain(`provider k8s: may not update Secret ${namespace}/${s}-pgrotate (403 Forbidden`);
    expect(err?.message).toContain(
      `pgrotate's Role needs get, create, update and patch on secrets in namespace ${namespace}`,
    );
    expect(err?.permanent).toBe(true);
    expect(err?.message).not.toContain(v1.password);
  });

  it('a Role without get fails at the first read, naming the verb', async () => {
    const namespace = await freshNamespace('rbac-noget');
    const kubeconfig = await serviceAccountKubeconfig(namespace, ['create', 'update', 'patch']);
    const sa = createKubernetesProvider('k8s', { type: 'kubernetes', namespace, kubeconfig }, deps());
    const s = secretName();
    await expect(sa.getCurrent(s)).rejects.toThrow(`provider k8s: may not get Secret ${namespace}/${s} (403 Forbidden`);
  });
});

/**
 * The admin API, except that before each of the first `times` replaces of Secret `name`, another
 * client updates that Secret (a key `written-by`): a real concurrent writer on the API server.
 */
function racingApi(api: CoreV1Api, namespace: string, name: string, times: number) {
  let writes = 0;
  const raced = new Proxy(api, {
    get(target, prop, receiver) {
      if (prop !== 'replaceNamespacedSecret') return Reflect.get(target, prop, receiver) as unknown;
      return async (req: Parameters<CoreV1Api['replaceNamespacedSecret']>[0]) => {
        if (req.name === name && writes < times) {
          writes++;
          const cur = await api.readNamespacedSecret({ name, namespace });
          await api.replaceNamespacedSecret({
            name,
            namespace,
            body: {
              ...cur,
              data: { ...cur.data, 'written-by': Buffer.from(`other-${Math.min(writes, 2)}`).toString('base64') },
            },
          });
        }
        return api.replaceNamespacedSecret(req);
      };
    },
  });
  return { api: raced, writes: () => writes };
}
