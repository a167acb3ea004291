import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { SecretValue } from '../../src/core/provider/secret-provider.js';
import { kubectl, kubeServer } from './kube-server.js';

// Admin-side helpers for tests of the kubernetes provider against the test API server: fresh
// namespaces, reading a Secret the way a pod does, and ServiceAccounts with a given Role.

/** An API client as the test API server's admin. */
export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeServer().kubeconfig);
  return kc;
}

/** A new namespace with a unique name. */
export async function freshNamespace(prefix: string): Promise<string> {
  const namespace = `${prefix}-${randomUUID().slice(0, 8)}`;
  await adminKubeConfig()
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name: namespace } } });
  return namespace;
}

/** A Secret's data, decoded: what a pod sees in its mounted files or env. */
export async function secretStrings(
  api: CoreV1Api,
  namespace: string,
  name: string,
): Promise<Record<string, string> | null> {
  try {
    const s = await api.readNamespacedSecret({ name, namespace });
    return Object.fromEntries(
      Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
    );
  } catch (err) {
    if ((err as { code?: number }).code === 404) return null;
    throw err;
  }
}

/** Read a Secret as an application does (env strings), the port parsed as a number, as apps do. */
export async function consumerRead(api: CoreV1Api, namespace: string, name: string): Promise<SecretValue | null> {
  const data = await secretStrings(api, namespace, name);
  if (!data) return null;
  const out: Record<string, unknown> = { ...data };
  if (data.port !== undefined) out.port = Number(data.port);
  return out as unknown as SecretValue;
}

/** Verbs of one Role rule on secrets. */
export type SecretVerb = 'get' | 'create' | 'update' | 'patch' | 'delete' | 'list' | 'watch';

/**
 * A ServiceAccount in `namespace` bound to a Role granting `verbs` on secrets there, and a
 * kubeconfig file that authenticates as it with a real token from the TokenRequest API.
 */
export async function serviceAccountKubeconfig(namespace: string, verbs: SecretVerb[]): Promise<string> {
  const name = `pgrotate-${randomUUID().slice(0, 6)}`;
  const kc = adminKubeConfig();
  await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({
    namespace,
    body: { metadata: { name }, rules: [{ apiGroups: [''], resources: ['secrets'], verbs }] },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    },
  });
  const token = kubectl(['create', 'token', name, '-n', namespace, '--duration', '1h']).trim();
  const info = kubeServer();
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-kube-sa-'));
  const path = join(dir, 'kubeconfig');
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server: info.server, 'certificate-authority': info.caFile } }],
      users: [{ name, user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: 'test', user: name, namespace } }],
      'current-context': 'sa',
    }),
    { mode: 0o600 },
  );
  return path;
}
