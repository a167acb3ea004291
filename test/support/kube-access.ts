import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubectl, kubeServer } from './kube-server.js';

// Helpers for asking the test API server what a ServiceAccount may do, and for the
// prometheus-operator CRDs the chart's PrometheusRule and ServiceMonitor need.

export const PROMETHEUS_OPERATOR_VERSION = 'v0.85.0';

/** What a SubjectAccessReview asks: a verb on a resource, in a namespace ('' = cluster-wide). */
export interface Access {
  verb: string;
  resource: string;
  group?: string;
  namespace?: string;
}

/** Ask the API server (as admin) whether the ServiceAccount NS:NAME may do `access`. */
export async function canServiceAccount(sa: { namespace: string; name: string }, access: Access): Promise<boolean> {
  const info = kubeServer();
  const body = JSON.stringify({
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user: `system:serviceaccount:${sa.namespace}:${sa.name}`,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${sa.namespace}`, 'system:authenticated'],
      resourceAttributes: {
        verb: access.verb,
        resource: access.resource,
        group: access.group ?? '',
        ...(access.namespace ? { namespace: access.namespace } : {}),
      },
    },
  });
  const url = new URL('/apis/authorization.k8s.io/v1/subjectaccessreviews', info.server);
  const text = await new Promise<string>((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ca: readFileSync(info.caFile),
        headers: { authorization: `Bearer ${info.token}`, 'content-type': 'application/json' },
      },
      (res) => {
        let out = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (out += d));
        res.on('end', () =>
          res.statusCode === 201 || res.statusCode === 200
            ? resolve(out)
            : reject(new Error(`SubjectAccessReview: HTTP ${res.statusCode}: ${out}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
  return (JSON.parse(text) as { status?: { allowed?: boolean } }).status?.allowed === true;
}

/** Run kubectl as the ServiceAccount, with a token from the TokenRequest API (no admin kubeconfig). */
export function kubectlAs(sa: { namespace: string; name: string }, args: string[]): { code: number; output: string } {
  const info = kubeServer();
  const token = kubectl(['-n', sa.namespace, 'create', 'token', sa.name, '--duration=10m']).trim();
  // Its own discovery cache: without HOME kubectl would write .kube/ into the working directory.
  const cacheDir = mkdtempSync(join(tmpdir(), 'pgrotate-kubectl-cache-'));
  try {
    const out = execFileSync(
      join(info.binDir, 'kubectl'),
      [
        '--server',
        info.server,
        '--certificate-authority',
        info.caFile,
        '--token',
        token,
        '--cache-dir',
        cacheDir,
        ...args,
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
        env: { PATH: process.env.PATH ?? '', KUBECONFIG: '/dev/null' },
      },
    );
    return { code: 0, output: out };
  } catch (err) {
    const e = err as { status?: number; stderr?: string; stdout?: string };
    return { code: e.status ?? -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

/** Where scripts/install/85-prometheus-crds.sh puts the CRDs. */
export function prometheusCrdDir(): string {
  return join(homedir(), '.cache', 'pgrotate', `prometheus-operator-crds-${PROMETHEUS_OPERATOR_VERSION}`);
}

/** Apply the PrometheusRule and ServiceMonitor CRDs (server-side: they are too large for the annotation). */
export function applyPrometheusCrds(): void {
  const dir = prometheusCrdDir();
  for (const f of ['monitoring.coreos.com_prometheusrules.yaml', 'monitoring.coreos.com_servicemonitors.yaml']) {
    let yaml: string;
    try {
      yaml = readFileSync(join(dir, f), 'utf8');
    } catch {
      throw new Error(`no ${join(dir, f)}: run bash scripts/install/85-prometheus-crds.sh`);
    }
    kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=pgrotate-tests', '-f', '-'], yaml);
  }
  kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/prometheusrules.monitoring.coreos.com',
    'crd/servicemonitors.monitoring.coreos.com',
  ]);
}
