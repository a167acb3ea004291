import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHART_DIR, parseManifests, runHelm, type HelmRun, type Manifest } from '../support/helm.js';
import { kubectl, kubeServer } from '../support/kube-server.js';
import { applyPrometheusCrds, canServiceAccount, kubectlAs, type Access } from '../support/kube-access.js';

// The chart installed for real into the test API server (kube-apiserver + etcd, RBAC on; no
// kubelet, so nothing runs and --wait is never used): every object of each mode is accepted by the
// API server's validation, upgrade and uninstall are clean, and the ServiceAccount may do exactly
// what pgrotate needs, checked with SubjectAccessReviews and with its own token.

const run = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
const namespaces: string[] = [];
const timings: Record<string, number> = {};
let valuesDir: string;

function createNamespace(prefix: string): string {
  const ns = `${prefix}-${run}`;
  kubectl(['create', 'namespace', ns]);
  namespaces.push(ns);
  return ns;
}

/** helm against the test API server with a values object; records the wall time under `label`. */
function helm(label: string, args: string[], values?: Record<string, unknown>): HelmRun {
  const files: string[] = [];
  if (values) {
    const path = join(valuesDir, `${label}.json`);
    writeFileSync(path, JSON.stringify(values));
    files.push('-f', path);
  }
  const started = performance.now();
  const r = runHelm([...args, ...files, '--kubeconfig', kubeServer().kubeconfig]);
  timings[label] = Math.round(performance.now() - started);
  return r;
}

function expectOk(r: HelmRun, what: string): void {
  expect(r.code, `${what}:\n${r.stdout}\n${r.stderr}`).toBe(0);
}

/** The objects of the release as helm applied them. */
function releaseManifests(release: string, ns: string): Manifest[] {
  const r = helm(`get-${release}`, ['get', 'manifest', release, '-n', ns]);
  expectOk(r, 'helm get manifest');
  return parseManifests(r.stdout);
}

/** Does the API server hold this object (kind/name in its namespace)? */
function exists(m: Manifest, fallbackNs: string): boolean {
  const ns = m.metadata.namespace ?? fallbackNs;
  const ref = `${m.kind.toLowerCase()}.${m.apiVersion.includes('/') ? m.apiVersion.split('/')[0] : ''}`.replace(
    /\.$/,
    '',
  );
  const out = kubectl(['get', ref, m.metadata.name, '-n', ns, '--ignore-not-found', '-o', 'name']);
  return out.trim() !== '';
}

beforeAll(() => {
  valuesDir = mkdtempSync(join(tmpdir(), 'pgrotate-helm-install-'));
  const started = performance.now();
  applyPrometheusCrds();
  timings['crds'] = Math.round(performance.now() - started);
}, 120_000);

afterAll(() => {
  for (const ns of namespaces) {
    try {
      kubectl(['delete', 'namespace', ns, '--wait=false']);
    } catch {
      // already gone
    }
  }
  rmSync(valuesDir, { recursive: true, force: true });
  console.log(`helm-install timings (ms): ${JSON.stringify(timings)}`);
});

describe('helm install into a real API server', () => {
  const expectedKinds: Record<string, string[]> = {
    cronjob: ['ConfigMap', 'CronJob', 'ServiceAccount'],
    worker: ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'ServiceAccount'],
    both: [
      'ConfigMap',
      'ConfigMap',
      'CronJob',
      'Deployment',
      'PodDisruptionBudget',
      'PrometheusRule',
      'Service',
      'ServiceAccount',
      'ServiceMonitor',
    ],
  };

  for (const mode of ['cronjob', 'worker', 'both'] as const) {
    it(`mode ${mode}: install accepted object by object, upgrade applies the change, uninstall removes everything`, () => {
      const ns = createNamespace(`hi-${mode}`);
      const release = `rot-${mode}`;
      const values: Record<string, unknown> = {
        mode,
        ...(mode === 'both'
          ? {
              dashboards: { enabled: true },
              prometheusRule: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
              worker: { serviceMonitor: { enabled: true } },
            }
          : {}),
      };
      expectOk(helm(`install-${mode}`, ['install', release, CHART_DIR, '-n', ns], values), 'helm install');
      const installed = releaseManifests(release, ns);
      expect(installed.map((m) => m.kind).sort()).toEqual(expectedKinds[mode]);
      for (const m of installed) expect(exists(m, ns), `${m.kind}/${m.metadata.name} stored`).toBe(true);

      // Upgrade: a changed value reaches the stored object; the release is at revision 2.
      const upgraded = {
        ...values,
        cronjob: { schedule: '7 * * * *' },
        worker: { ...(values.worker as object), replicas: 3 },
      };
      expectOk(helm(`upgrade-${mode}`, ['upgrade', release, CHART_DIR, '-n', ns], upgraded), 'helm upgrade');
      const status = JSON.parse(helm(`status-${mode}`, ['status', release, '-n', ns, '-o', 'json']).stdout) as {
        version: number;
        info: { status: string };
      };
      expect(status).toMatchObject({ version: 2, info: { status: 'deployed' } });
      if (mode !== 'worker') {
        const schedule = kubectl(['-n', ns, 'get', 'cronjob', '-o', 'jsonpath={.items[0].spec.schedule}']);
        expect(schedule).toBe('7 * * * *');
      }
      if (mode !== 'cronjob') {
        const replicas = kubectl(['-n', ns, 'get', 'deployment', '-o', 'jsonpath={.items[0].spec.replicas}']);
        expect(replicas).toBe('3');
      }

      expectOk(helm(`uninstall-${mode}`, ['uninstall', release, '-n', ns]), 'helm uninstall');
      for (const m of installed) expect(exists(m, ns), `${m.kind}/${m.metadata.name} removed`).toBe(false);
      // Nothing of the release is left, helm's own release Secrets included.
      expect(
        kubectl(['-n', ns, 'get', 'secrets,configmaps', '-l', `app.kubernetes.io/instance=${release}`, '-o', 'name']),
      ).toBe('');
      expect(kubectl(['-n', ns, 'get', 'secrets', '-l', `owner=helm,name=${release}`, '-o', 'name'])).toBe('');
    }, 120_000);
  }

  it('the dashboard and the PrometheusRule are stored as the sidecar and the operator read them', () => {
    const ns = createNamespace('hi-obs');
    const release = 'rot-obs';
    const values = {
      mode: 'worker',
      dashboards: { enabled: true, annotations: { grafana_folder: 'Databases' } },
      prometheusRule: { enabled: true, selector: `namespace="${ns}"`, alertLabels: { team: 'dba' } },
    };
    expectOk(helm('install-obs', ['install', release, CHART_DIR, '-n', ns], values), 'helm install');
    const cms = JSON.parse(kubectl(['-n', ns, 'get', 'configmaps', '-l', 'grafana_dashboard=1', '-o', 'json'])) as {
      items: Array<{ metadata: { annotations?: Record<string, string> }; data: Record<string, string> }>;
    };
    expect(cms.items).toHaveLength(1);
    expect(cms.items[0]?.metadata.annotations?.grafana_folder).toBe('Databases');
    const dashboard = JSON.parse(cms.items[0]?.data['pgrotate.json'] ?? '') as { uid: string; panels: unknown[] };
    expect(dashboard.uid).toBe('pgrotate');
    expect(dashboard.panels.length).toBeGreaterThan(5);

    const rule = JSON.parse(kubectl(['-n', ns, 'get', 'prometheusrules', 'rot-obs-pgrotate', '-o', 'json'])) as {
      spec: { groups: Array<{ rules: Array<{ alert: string; expr: string; labels: Record<string, string> }> }> };
    };
    const rules = rule.spec.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual([
      'PgrotateRotationFailed',
      'PgrotateAccountOverdue',
      'PgrotateCredentialExpiringSoon',
      'PgrotateMetricsStale',
    ]);
    for (const r of rules) {
      expect(r.expr).toContain(`{namespace="${ns}"}`);
      expect(r.labels.team).toBe('dba');
    }
    // The CRD's own schema is enforced by the API server: a rule with a malformed `for` is refused.
    const bad = helm('upgrade-obs-bad', ['upgrade', release, CHART_DIR, '-n', ns], {
      ...values,
      prometheusRule: {
        ...values.prometheusRule,
        additionalRules: [{ alert: 'Bad', expr: 'vector(1)', for: 'five minutes' }],
      },
    });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/PrometheusRule.*(Invalid value|for)/s);
    expectOk(helm('uninstall-obs', ['uninstall', release, '-n', ns]), 'helm uninstall');
    expect(kubectl(['-n', ns, 'get', 'prometheusrules,configmaps', '-o', 'name'])).not.toMatch(/rot-obs/);
  }, 120_000);

  it('RBAC: the ServiceAccount may do exactly what pgrotate needs, in the listed namespaces only', async () => {
    const ns = createNamespace('hi-rbac');
    const apps = createNamespace('hi-apps');
    const billing = createNamespace('hi-billing');
    const other = createNamespace('hi-other');
    const release = 'rot-rbac';
    const sa = { namespace: ns, name: 'rot-rbac-pgrotate' };
    const can = (a: Access) => canServiceAccount(sa, a);
    const values = { mode: 'both', rbac: { secretNamespaces: [apps, billing], restartNamespaces: [apps] } };
    expectOk(helm('install-rbac', ['install', release, CHART_DIR, '-n', ns], values), 'helm install');

    const allowed: Access[] = [];
    for (const namespace of [apps, billing])
      for (const verb of ['get', 'create', 'update', 'patch']) allowed.push({ verb, resource: 'secrets', namespace });
    for (const resource of ['deployments', 'statefulsets', 'daemonsets'])
      for (const verb of ['get', 'patch']) allowed.push({ verb, resource, group: 'apps', namespace: apps });
    const denied: Access[] = [
      // No delete, list or watch of Secrets, even where pgrotate writes them.
      ...['delete', 'deletecollection', 'list', 'watch'].map((verb) => ({
        verb,
        resource: 'secrets',
        namespace: apps,
      })),
      // Secrets of unlisted namespaces (its own included) and cluster-wide.
      { verb: 'get', resource: 'secrets', namespace: other },
      { verb: 'create', resource: 'secrets', namespace: other },
      { verb: 'get', resource: 'secrets', namespace: ns },
      { verb: 'get', resource: 'secrets' },
      { verb: 'list', resource: 'secrets' },
      // Workloads: only get and patch, only where restarts are listed.
      { verb: 'delete', resource: 'deployments', group: 'apps', namespace: apps },
      { verb: 'update', resource: 'deployments', group: 'apps', namespace: apps },
      { verb: 'create', resource: 'deployments', group: 'apps', namespace: apps },
      { verb: 'list', resource: 'deployments', group: 'apps', namespace: apps },
      { verb: 'patch', resource: 'deployments', group: 'apps', namespace: billing },
      { verb: 'patch', resource: 'deployments', group: 'apps' },
      // Other resources.
      { verb: 'get', resource: 'configmaps', namespace: apps },
      { verb: 'get', resource: 'pods', namespace: apps },
      { verb: 'create', resource: 'pods', namespace: apps },
      { verb: 'patch', resource: 'replicasets', group: 'apps', namespace: apps },
      { verb: 'create', resource: 'roles', group: 'rbac.authorization.k8s.io', namespace: apps },
      { verb: 'create', resource: 'tokenreviews', group: 'authentication.k8s.io' },
    ];
    const check = async (list: Access[]) =>
      Promise.all(
        list.map(
          async (a) =>
            `${a.verb} ${a.group ? `${a.group}/` : ''}${a.resource} in ${a.namespace ?? '(cluster)'}: ${await can(a)}`,
        ),
      );
    expect(await check(allowed)).toEqual(allowed.map((a) => expect.stringMatching(new RegExp(`^${a.verb} .*: true$`))));
    expect(await check(denied)).toEqual(denied.map((a) => expect.stringMatching(new RegExp(`^${a.verb} .*: false$`))));

    // With its own token from the TokenRequest API (the in-cluster identity the pods would use).
    const created = kubectlAs(sa, [
      '-n',
      apps,
      'create',
      'secret',
      'generic',
      'billing-db',
      '--from-literal=username=app',
    ]);
    expect(created.code, created.output).toBe(0);
    const patched = kubectlAs(sa, [
      '-n',
      apps,
      'patch',
      'secret',
      'billing-db',
      '-p',
      '{"stringData":{"password":"x"}}',
    ]);
    expect(patched.code, patched.output).toBe(0);
    const del = kubectlAs(sa, ['-n', apps, 'delete', 'secret', 'billing-db']);
    expect(del.code).not.toBe(0);
    expect(del.output).toMatch(/forbidden/i);
    const elsewhere = kubectlAs(sa, ['-n', other, 'get', 'secret', 'anything']);
    expect(elsewhere.output).toMatch(/forbidden/i);

    // The pods get the API token only because pgrotate now calls the API.
    const manifests = releaseManifests(release, ns);
    const podSpecs = manifests
      .filter((m) => m.kind === 'Deployment' || m.kind === 'CronJob')
      .map((m) =>
        m.kind === 'CronJob'
          ? (m.spec as { jobTemplate: { spec: { template: { spec: Record<string, unknown> } } } }).jobTemplate.spec
              .template.spec
          : (m.spec as { template: { spec: Record<string, unknown> } }).template.spec,
      );
    expect(podSpecs.map((s) => s.automountServiceAccountToken)).toEqual([true, true]);
    expect(manifests.some((m) => m.kind === 'ClusterRole')).toBe(false);

    // tokenReview adds exactly the TokenReview permission Vault's kubernetes auth needs.
    expectOk(
      helm('upgrade-rbac', ['upgrade', release, CHART_DIR, '-n', ns], {
        ...values,
        rbac: { ...values.rbac, tokenReview: true },
      }),
      'helm upgrade',
    );
    expect(await can({ verb: 'create', resource: 'tokenreviews', group: 'authentication.k8s.io' })).toBe(true);
    expect(await can({ verb: 'get', resource: 'secrets' })).toBe(false);
    // Dropping a namespace from the list takes its permission away.
    expectOk(
      helm('upgrade-rbac-2', ['upgrade', release, CHART_DIR, '-n', ns], {
        mode: 'both',
        rbac: { secretNamespaces: [apps] },
      }),
      'helm upgrade',
    );
    expect(await can({ verb: 'get', resource: 'secrets', namespace: billing })).toBe(false);
    expect(await can({ verb: 'get', resource: 'secrets', namespace: apps })).toBe(true);
    expect(await can({ verb: 'patch', resource: 'deployments', group: 'apps', namespace: apps })).toBe(false);

    // Uninstall takes every grant away, the cluster-wide binding included.
    expectOk(helm('uninstall-rbac', ['uninstall', release, '-n', ns]), 'helm uninstall');
    expect(
      await check([...allowed, { verb: 'create', resource: 'tokenreviews', group: 'authentication.k8s.io' }]),
    ).toEqual([...allowed, { verb: 'create' }].map((a) => expect.stringMatching(new RegExp(`^${a.verb} .*: false$`))));
    expect(kubectl(['get', 'clusterrolebindings', '-l', `app.kubernetes.io/instance=${release}`, '-o', 'name'])).toBe(
      '',
    );
  }, 120_000);
});
