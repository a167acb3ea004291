import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/app/load-config.js';
import {
  CHART_DIR,
  at,
  findManifest,
  helmTemplate,
  renderNotes,
  runHelm,
  validateManifest,
  type Manifest,
} from '../support/helm.js';
import { REPO_ROOT } from '../support/pg-fixture.js';

// The Helm chart (helm/pgrotate): lint, render each mode and a values file that sets every
// option, validate every rendered object against the Kubernetes API schemas, check the
// hardening and wiring, and make sure wrong values are refused by values.schema.json.

const ALL_OPTIONS = join(REPO_ROOT, 'test', 'fixtures', 'helm', 'all-options.yaml');

interface Container {
  name: string;
  image: string;
  args: string[];
  env: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  envFrom?: Array<{ secretRef?: { name: string }; configMapRef?: { name: string } }>;
  ports?: Array<{ name: string; containerPort: number }>;
  securityContext: Record<string, unknown>;
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  livenessProbe?: { httpGet: { path: string; port: string; scheme: string } };
  readinessProbe?: { httpGet: { path: string; port: string; scheme: string } };
  resources: Record<string, Record<string, string>>;
}
interface PodSpec {
  serviceAccountName: string;
  automountServiceAccountToken: boolean;
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes: Array<Record<string, unknown> & { name: string }>;
  restartPolicy?: string;
}

const podSpecOf = (m: Manifest): PodSpec =>
  m.kind === 'CronJob'
    ? at<PodSpec>(m, 'spec', 'jobTemplate', 'spec', 'template', 'spec')
    : at<PodSpec>(m, 'spec', 'template', 'spec');
const containerOf = (m: Manifest): Container => {
  const containers = podSpecOf(m).containers;
  expect(containers).toHaveLength(1);
  return containers[0] as Container;
};
const renderedConfig = (manifests: Manifest[]): Record<string, unknown> =>
  parseYaml(at<string>(findManifest(manifests, 'ConfigMap'), 'data', 'pgrotate.yaml')) as Record<string, unknown>;

/** Render, fail with helm's message if it did not, and validate every object. */
function renderValid(opts: Parameters<typeof helmTemplate>[0]): Manifest[] {
  const r = helmTemplate(opts);
  expect(r.code, r.stderr).toBe(0);
  expect(r.manifests.length).toBeGreaterThan(0);
  for (const m of r.manifests) validateManifest(m);
  // The chart never creates a Secret: credentials are referenced, never inlined.
  expect(r.manifests.filter((m) => m.kind === 'Secret')).toEqual([]);
  return r.manifests;
}

/** The hardening every pgrotate pod gets, whatever the mode. */
function expectHardened(m: Manifest, configMountPath = '/etc/pgrotate'): void {
  const pod = podSpecOf(m);
  const c = containerOf(m);
  expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
  expect(c.securityContext).toMatchObject({
    runAsNonRoot: true,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  });
  expect(Number(c.securityContext.runAsUser)).toBeGreaterThan(0);
  const tmp = c.volumeMounts.find((v) => v.mountPath === '/tmp');
  expect(pod.volumes.find((v) => v.name === tmp?.name)).toMatchObject({ emptyDir: {} });
  // The CLI reads $PGROTATE_CONFIG: it must be the file the ConfigMap volume provides.
  const configEnv = c.env.find((e) => e.name === 'PGROTATE_CONFIG');
  expect(configEnv?.value).toBe(`${configMountPath}/pgrotate.yaml`);
  const mount = c.volumeMounts.find((v) => v.mountPath === configMountPath);
  expect(mount?.readOnly).toBe(true);
  expect(pod.volumes.find((v) => v.name === mount?.name)).toMatchObject({
    configMap: { items: [{ key: 'pgrotate.yaml', path: 'pgrotate.yaml' }] },
  });
  expect(c.resources.requests).toBeDefined();
}

describe('helm chart', () => {
  it('passes helm lint (strict) with the defaults, each mode and every option', () => {
    for (const args of [[], ['--set', 'mode=worker'], ['--set', 'mode=both'], ['-f', ALL_OPTIONS]]) {
      const r = runHelm(['lint', '--strict', CHART_DIR, ...args]);
      expect(r.code, `${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it('mode cronjob (the default): a hardened CronJob running run-due, no worker objects', () => {
    const manifests = renderValid({});
    expect(manifests.map((m) => m.kind).sort()).toEqual(['ConfigMap', 'CronJob', 'ServiceAccount']);
    const cj = findManifest(manifests, 'CronJob');
    expect(at(cj, 'spec')).toMatchObject({
      schedule: '*/15 * * * *',
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 300,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: { spec: { backoffLimit: 1 } },
    });
    expect(containerOf(cj).args).toEqual(['run-due']);
    expect(containerOf(cj).image).toBe('pgrotate:0.1.0');
    expect(podSpecOf(cj).restartPolicy).toBe('Never');
    expectHardened(cj);
    // Nothing in the pod talks to the Kubernetes API unless asked.
    expect(podSpecOf(cj).automountServiceAccountToken).toBe(false);
    const sa = findManifest(manifests, 'ServiceAccount');
    expect(podSpecOf(cj).serviceAccountName).toBe(sa.metadata.name);
    expect(at(renderedConfig(manifests), 'http')).toBeUndefined();
  });

  it('mode worker: Deployment running worker, Service and PDB on the HTTP port the config listens on', () => {
    const manifests = renderValid({ values: { mode: 'worker' } });
    expect(manifests.map((m) => m.kind).sort()).toEqual([
      'ConfigMap',
      'Deployment',
      'PodDisruptionBudget',
      'Service',
      'ServiceAccount',
    ]);
    const dep = findManifest(manifests, 'Deployment');
    const c = containerOf(dep);
    expect(c.args).toEqual(['worker']);
    expect(at(dep, 'spec', 'replicas')).toBe(2);
    expectHardened(dep);
    // The worker must listen on all interfaces at the port the Service and probes use.
    expect(at(renderedConfig(manifests), 'http', 'listen')).toBe('0.0.0.0:9187');
    expect(c.ports).toEqual([{ name: 'http', containerPort: 9187, protocol: 'TCP' }]);
    expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http', scheme: 'HTTP' });
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http', scheme: 'HTTP' });
    const svc = findManifest(manifests, 'Service');
    expect(at(svc, 'spec', 'ports')).toEqual([{ name: 'http', port: 9187, targetPort: 'http', protocol: 'TCP' }]);
    const podLabels = at<Record<string, string>>(dep, 'spec', 'template', 'metadata', 'labels');
    for (const selected of [
      at<Record<string, string>>(svc, 'spec', 'selector'),
      at<Record<string, string>>(findManifest(manifests, 'PodDisruptionBudget'), 'spec', 'selector', 'matchLabels'),
    ]) {
      expect(podLabels).toMatchObject(selected);
    }
    expect(at(findManifest(manifests, 'PodDisruptionBudget'), 'spec', 'maxUnavailable')).toBe(1);
    // A config change rolls the workers.
    expect(at<string>(dep, 'spec', 'template', 'metadata', 'annotations', 'checksum/config')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('mode both: the CronJob and the worker Deployment share one ConfigMap and ServiceAccount', () => {
    const manifests = renderValid({ values: { mode: 'both' } });
    expect(manifests.map((m) => m.kind).sort()).toEqual([
      'ConfigMap',
      'CronJob',
      'Deployment',
      'PodDisruptionBudget',
      'Service',
      'ServiceAccount',
    ]);
    const cm = findManifest(manifests, 'ConfigMap').metadata.name;
    for (const kind of ['CronJob', 'Deployment']) {
      const m = findManifest(manifests, kind);
      expectHardened(m);
      expect(podSpecOf(m).volumes.find((v) => v.name === 'config')).toMatchObject({ configMap: { name: cm } });
    }
  });

  it('every option: identity, secrets by reference, projected Vault token, TLS probes, ServiceMonitor, NetworkPolicy', () => {
    const manifests = renderValid({ valuesFiles: [ALL_OPTIONS] });
    expect(manifests.map((m) => m.kind).sort()).toEqual([
      'ConfigMap',
      'CronJob',
      'Deployment',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'Service',
      'ServiceAccount',
      'ServiceMonitor',
    ]);
    const values = parseYaml(readFileSync(ALL_OPTIONS, 'utf8')) as { config: Record<string, unknown> };

    // The rendered config is the values subtree plus the listen address, and pgrotate accepts it.
    const config = renderedConfig(manifests);
    expect(config).toEqual({ ...values.config, http: { ...(values.config.http as object), listen: '0.0.0.0:9443' } });
    const parsed = configSchema.safeParse(config);
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);

    const sa = findManifest(manifests, 'ServiceAccount');
    expect(sa.metadata.name).toBe('pgrotate-sa');
    expect(at(sa, 'metadata', 'annotations')).toEqual({
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/pgrotate',
      'azure.workload.identity/client-id': '00000000-0000-0000-0000-000000000000',
    });
    expect(sa.metadata.labels?.['azure.workload.identity/use']).toBe('true');
    expect(sa.metadata.labels?.team).toBe('platform');

    for (const kind of ['CronJob', 'Deployment']) {
      const m = findManifest(manifests, kind);
      const pod = podSpecOf(m);
      const c = containerOf(m);
      expectHardened(m);
      expect(pod.serviceAccountName).toBe('pgrotate-sa');
      expect(pod.automountServiceAccountToken).toBe(true);
      const template =
        kind === 'CronJob' ? at(m, 'spec', 'jobTemplate', 'spec', 'template') : at(m, 'spec', 'template');
      expect(at(template, 'metadata', 'labels', 'azure.workload.identity/use')).toBe('true');
      expect(at(template, 'metadata', 'annotations', 'prometheus.io/scrape')).toBe('false');
      expect(c.image).toBe(
        'registry.example.com/platform/pgrotate@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      );
      expect(at(pod, 'securityContext', 'runAsUser')).toBe(20001);
      expect(at(pod, 'imagePullSecrets')).toEqual([{ name: 'registry-creds' }]);
      expect(at(pod, 'priorityClassName')).toBe('high-priority');
      expect(at(pod, 'tolerations', 0, 'key')).toBe('dedicated');
      expect(at(pod, 'nodeSelector')).toEqual({ 'kubernetes.io/os': 'linux' });
      expect(at(pod, 'affinity', 'podAntiAffinity')).toBeDefined();
      // Secrets: env from keys of the existing Secret, the whole Secret as env, and as files.
      expect(c.env).toEqual(
        expect.arrayContaining([
          {
            name: 'PGROTATE_STATE_PASSWORD',
            valueFrom: { secretKeyRef: { name: 'pgrotate-credentials', key: 'state-password' } },
          },
          {
            name: 'PGROTATE_REDIS_PASSWORD',
            valueFrom: { secretKeyRef: { name: 'pgrotate-credentials', key: 'redis-password' } },
          },
          { name: 'PGROTATE_LOG_LEVEL', value: 'debug' },
          { name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'regional' },
        ]),
      );
      expect(c.envFrom).toEqual([
        { secretRef: { name: 'pgrotate-credentials' } },
        { configMapRef: { name: 'pgrotate-extra-env' } },
      ]);
      const secretMount = c.volumeMounts.find((v) => v.mountPath === '/etc/pgrotate/secrets');
      expect(secretMount?.readOnly).toBe(true);
      expect(pod.volumes.find((v) => v.name === secretMount?.name)).toEqual({
        name: 'secrets',
        secret: { secretName: 'pgrotate-credentials', defaultMode: 0o400 },
      });
      // The projected token is where the vault provider's jwtFile points.
      const jwtFile = at<string>(config, 'providers', 'vault', 'auth', 'jwtFile');
      const tokenMount = c.volumeMounts.find((v) => jwtFile.startsWith(`${v.mountPath}/`));
      const tokenVolume = pod.volumes.find((v) => v.name === tokenMount?.name);
      expect(at(tokenVolume, 'projected', 'sources', 0, 'serviceAccountToken')).toEqual({
        path: jwtFile.slice((tokenMount?.mountPath.length ?? 0) + 1),
        audience: 'vault.internal',
        expirationSeconds: 1800,
      });
      expect(c.volumeMounts.find((v) => v.mountPath === '/etc/ssl/corporate')).toBeDefined();
      expect(pod.volumes.find((v) => v.name === 'tmp')).toEqual({ name: 'tmp', emptyDir: { sizeLimit: '32Mi' } });
    }

    const cj = findManifest(manifests, 'CronJob');
    expect(at(cj, 'spec')).toMatchObject({
      schedule: '7 */2 * * *',
      timeZone: 'Etc/UTC',
      startingDeadlineSeconds: 600,
      successfulJobsHistoryLimit: 5,
      failedJobsHistoryLimit: 10,
      suspend: true,
      jobTemplate: { spec: { backoffLimit: 2, activeDeadlineSeconds: 1800, ttlSecondsAfterFinished: 3600 } },
    });
    expect(containerOf(cj).args).toEqual(['run-due', '--json']);
    expect(containerOf(cj).resources).toEqual({
      requests: { cpu: '200m', memory: '256Mi' },
      limits: { memory: '512Mi' },
    });
    expect(containerOf(cj).ports).toBeUndefined();

    const dep = findManifest(manifests, 'Deployment');
    const wc = containerOf(dep);
    expect(at(dep, 'spec', 'replicas')).toBe(3);
    expect(wc.ports).toEqual([{ name: 'http', containerPort: 9443, protocol: 'TCP' }]);
    expect(wc.livenessProbe).toMatchObject({
      httpGet: { path: '/healthz', port: 'http', scheme: 'HTTPS' },
      periodSeconds: 30,
      failureThreshold: 4,
    });
    expect(wc.readinessProbe).toMatchObject({
      httpGet: { path: '/readyz', port: 'http', scheme: 'HTTPS' },
      periodSeconds: 5,
    });
    expect(at(dep, 'spec', 'template', 'spec', 'terminationGracePeriodSeconds')).toBe(90);
    expect(at(dep, 'spec', 'template', 'spec', 'topologySpreadConstraints', 0, 'topologyKey')).toBe(
      'topology.kubernetes.io/zone',
    );
    expect(at(findManifest(manifests, 'Service'), 'spec', 'ports', 0)).toEqual({
      name: 'http',
      port: 443,
      targetPort: 'http',
      protocol: 'TCP',
    });
    expect(at(findManifest(manifests, 'PodDisruptionBudget'), 'spec')).toMatchObject({ minAvailable: 2 });
    expect(at(findManifest(manifests, 'PodDisruptionBudget'), 'spec', 'maxUnavailable')).toBeUndefined();

    const sm = findManifest(manifests, 'ServiceMonitor');
    expect(sm.metadata.labels?.release).toBe('kube-prometheus-stack');
    expect(at(sm, 'spec', 'endpoints', 0)).toMatchObject({
      port: 'http',
      path: '/metrics',
      scheme: 'https',
      interval: '15s',
      scrapeTimeout: '5s',
      tlsConfig: {
        serverName: 'pgrotate-prod-worker.pgrotate.svc',
        ca: { secret: { name: 'pgrotate-ca', key: 'ca.crt' } },
      },
    });
    expect(at(findManifest(manifests, 'Service'), 'metadata', 'labels')).toMatchObject(
      at<Record<string, string>>(sm, 'spec', 'selector', 'matchLabels'),
    );

    const np = findManifest(manifests, 'NetworkPolicy');
    expect(at(np, 'spec', 'podSelector', 'matchLabels')).toEqual({
      'app.kubernetes.io/name': 'rotator',
      'app.kubernetes.io/instance': 'rot',
    });
    const egress = at<Array<{ to?: unknown[]; ports: Array<{ port: number | string; protocol: string }> }>>(
      np,
      'spec',
      'egress',
    );
    expect(egress).toEqual([
      {
        ports: [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
      },
      {
        to: [{ ipBlock: { cidr: '10.20.0.0/16', except: ['10.20.99.0/24'] } }],
        ports: [
          { port: 5432, protocol: 'TCP' },
          { port: 6432, protocol: 'TCP' },
        ],
      },
      { to: [{ ipBlock: { cidr: '10.30.0.10/32' } }], ports: [{ port: 8200, protocol: 'TCP' }] },
      { to: [{ ipBlock: { cidr: '0.0.0.0/0' } }], ports: [{ port: 443, protocol: 'TCP' }] },
      {
        to: [{ ipBlock: { cidr: '10.40.0.0/24' } }],
        ports: [
          { port: 6379, protocol: 'TCP' },
          { port: 26379, protocol: 'TCP' },
        ],
      },
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
        ports: [{ port: 4317, protocol: 'TCP' }],
      },
    ]);
    expect(at(np, 'spec', 'ingress')).toEqual([
      {
        ports: [{ port: 'http', protocol: 'TCP' }],
        from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
      },
    ]);
  });

  it('a NetworkPolicy with nothing listed: DNS only, and no ingress for the CronJob', () => {
    const np = findManifest(renderValid({ values: { networkPolicy: { enabled: true } } }), 'NetworkPolicy');
    expect(at(np, 'spec', 'policyTypes')).toEqual(['Ingress', 'Egress']);
    expect(at(np, 'spec', 'ingress')).toEqual([]);
    expect(at(np, 'spec', 'egress')).toEqual([
      {
        ports: [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
      },
    ]);
    const closed = findManifest(
      renderValid({ values: { mode: 'worker', networkPolicy: { enabled: true, dns: false } } }),
      'NetworkPolicy',
    );
    expect(at(closed, 'spec', 'egress')).toEqual([]);
    expect(at(closed, 'spec', 'ingress')).toEqual([{ ports: [{ port: 'http', protocol: 'TCP' }] }]);
  });

  it('existingConfigMap replaces the rendered ConfigMap; NOTES render for every mode', () => {
    const manifests = renderValid({ values: { mode: 'both', existingConfigMap: 'my-pgrotate-config' } });
    expect(manifests.filter((m) => m.kind === 'ConfigMap')).toEqual([]);
    for (const kind of ['CronJob', 'Deployment']) {
      expect(podSpecOf(findManifest(manifests, kind)).volumes.find((v) => v.name === 'config')).toMatchObject({
        configMap: { name: 'my-pgrotate-config' },
      });
    }
    for (const mode of ['cronjob', 'worker', 'both']) {
      const r = renderNotes({
        mode,
        vaultToken: { enabled: true },
        existingSecret: 'creds',
        secretEnv: { PGROTATE_STATE_PASSWORD: 'state-password' },
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`(mode: ${mode})`);
      expect(r.stdout).toContain('jwtFile: /var/run/secrets/vault/token');
      expect(r.stdout).toContain('Secret creds (env: PGROTATE_STATE_PASSWORD)');
      expect(r.stdout.includes('create job --from=cronjob/rot-pgrotate')).toBe(mode !== 'worker');
      expect(r.stdout.includes('port-forward svc/rot-pgrotate-worker 9187')).toBe(mode !== 'cronjob');
    }
  });

  it('refuses wrong values at helm template, naming the value', () => {
    const cases: Array<{ values: Record<string, unknown>; names: RegExp }> = [
      { values: { mode: 'sidecar' }, names: /mode/ },
      { values: { mode: 3 }, names: /mode/ },
      { values: { cronjob: { schedule: 15 } }, names: /cronjob.*schedule|schedule/ },
      { values: { cronjob: { schedule: 'every day' } }, names: /schedule/ },
      { values: { cronjob: { startingDeadlineSeconds: -10 } }, names: /startingDeadlineSeconds/ },
      { values: { cronjob: { successfulJobsHistoryLimit: -1 } }, names: /successfulJobsHistoryLimit/ },
      { values: { cronjob: { backoffLimit: 1.5 } }, names: /backoffLimit/ },
      { values: { cronjob: { concurrencyPolicy: 'Sometimes' } }, names: /concurrencyPolicy/ },
      { values: { worker: { replicas: 'two' } }, names: /replicas/ },
      { values: { worker: { port: 70000 } }, names: /port/ },
      { values: { worker: { serviceMonitor: { interval: 'often' } } }, names: /interval/ },
      { values: { vaultToken: { expirationSeconds: 60 } }, names: /expirationSeconds/ },
      { values: { resources: { limits: { memory: 'lots' } } }, names: /memory/ },
      { values: { networkPolicy: { databases: [{ cidr: '10.0.0.0/8' }] } }, names: /ports/ },
      { values: { secretEnv: { 'not-an-env-name': 'key' }, existingSecret: 's' }, names: /secretEnv/ },
      { values: { config: { state: null } }, names: /state/ },
      { values: { modes: 'worker' }, names: /modes/ },
      // Not a schema rule but a template one: a secret reference without the Secret's name.
      { values: { secretEnv: { PGROTATE_STATE_PASSWORD: 'state-password' } }, names: /existingSecret/ },
    ];
    for (const { values, names } of cases) {
      const r = helmTemplate({ values });
      const label = JSON.stringify(values);
      expect(r.code, `${label} was accepted`).not.toBe(0);
      expect(r.stderr, label).toMatch(names);
      if (!('secretEnv' in values && !('existingSecret' in values)))
        expect(r.stderr, label).toMatch(/values don't meet the specifications of the schema|schema/);
    }
  });
});
