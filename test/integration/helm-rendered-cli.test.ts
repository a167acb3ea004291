import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { expectCurrentLogsIn } from '../support/invariants.js';
import { auditCounts, eventually, makeDue } from '../support/jobs-fixture.js';
import { freePort } from '../support/free-port.js';
import { at, findManifest, helmTemplate, validateManifest, type Manifest } from '../support/helm.js';
import { CLI, REPO_ROOT, createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// What the chart renders is what the CLI reads: render the CronJob (and the worker Deployment),
// lay out its volumes the way the kubelet would (the ConfigMap's file, the existing Secret's keys
// as files), build its environment from the rendered env/secretKeyRef entries, and run the built
// CLI with the rendered arguments after the image's ENTRYPOINT against a real database.

interface EnvEntry {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Volume {
  name: string;
  configMap?: { name: string; items: Array<{ key: string; path: string }> };
  secret?: { secretName: string };
  emptyDir?: unknown;
}
interface Probe {
  httpGet: { path: string; port: string; scheme: string };
}
interface PodSpec {
  containers: Array<{
    args: string[];
    env: EnvEntry[];
    envFrom?: Array<{ secretRef?: { name: string } }>;
    volumeMounts: Array<{ name: string; mountPath: string }>;
    ports?: Array<{ name: string; containerPort: number }>;
    livenessProbe?: Probe;
    readinessProbe?: Probe;
  }>;
  volumes: Volume[];
  terminationGracePeriodSeconds?: number;
}

/** The Secret the operator created beforehand (existingSecret): name and data. */
interface ExistingSecret {
  name: string;
  data: Record<string, string>;
}

/** Write the pod's ConfigMap and Secret volumes to their mount paths and build its environment. */
function materializePod(
  manifests: Manifest[],
  pod: PodSpec,
  secret: ExistingSecret,
): { args: string[]; env: NodeJS.ProcessEnv } {
  const container = pod.containers[0];
  if (!container) throw new Error('no container rendered');
  for (const mount of container.volumeMounts) {
    const volume = pod.volumes.find((v) => v.name === mount.name);
    if (!volume) throw new Error(`volumeMount ${mount.name} has no volume`);
    if (volume.configMap) {
      const cm = findManifest(manifests, 'ConfigMap');
      expect(cm.metadata.name).toBe(volume.configMap.name);
      for (const item of volume.configMap.items) {
        mkdirSync(dirname(join(mount.mountPath, item.path)), { recursive: true });
        writeFileSync(join(mount.mountPath, item.path), at<string>(cm, 'data', item.key), { mode: 0o644 });
      }
    } else if (volume.secret) {
      expect(volume.secret.secretName).toBe(secret.name);
      mkdirSync(mount.mountPath, { recursive: true });
      for (const [key, value] of Object.entries(secret.data))
        writeFileSync(join(mount.mountPath, key), value, { mode: 0o400 });
    } else if (!volume.emptyDir) {
      throw new Error(`volume ${volume.name} is of a kind this test does not lay out`);
    }
  }
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '' };
  for (const from of container.envFrom ?? []) {
    if (from.secretRef) {
      expect(from.secretRef.name).toBe(secret.name);
      Object.assign(env, secret.data);
    }
  }
  for (const e of container.env) {
    const ref = e.valueFrom?.secretKeyRef;
    if (ref) {
      expect(ref.name).toBe(secret.name);
      const value = secret.data[ref.key];
      if (value === undefined)
        throw new Error(`env ${e.name} references key ${ref.key}, which the Secret does not have`);
      env[e.name] = value;
    } else {
      env[e.name] = e.value;
    }
  }
  return { args: container.args, env };
}

describe('helm chart: the rendered pods run the real CLI', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('the image entrypoint is the built CLI that the tests run', () => {
    const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(entrypoint ?? 'null')).toEqual(['node', '/app/dist/src/entry/cli/main.js']);
    expect(dockerfile).toMatch(/^WORKDIR \/app$/m);
    expect(dockerfile).toMatch(/^COPY --from=build .*\/app\/dist \.\/dist$/m);
    expect(dockerfile).toMatch(/^USER 10001:10001$/m);
    expect(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).bin.pgrotate).toBe(
      'dist/src/entry/cli/main.js',
    );
  });

  /** Chart values for this fixture: the state password as an env var, the admin password as a file. */
  function chartValues(
    mode: string,
    account: { name: string; role: string },
    dir: string,
    extra: Record<string, unknown> = {},
  ) {
    const configMountPath = join(fx.dir, dir, 'pgrotate');
    const secretsPath = join(fx.dir, dir, 'pgrotate-secrets');
    return {
      mode,
      configMountPath,
      existingSecret: secret().name,
      // The state password through an env var, the admin password as a mounted file.
      secretEnv: { PGROTATE_STATE_PASSWORD: 'state-password' },
      secretFiles: { enabled: true, mountPath: secretsPath },
      config: {
        state: {
          url: `postgres://${fx.rotator}@${fx.server.host}:${fx.server.port}/${fx.stateDb}`,
          password: 'env:PGROTATE_STATE_PASSWORD',
          sslmode: 'disable',
        },
        providers: { local: { type: 'file', path: fx.secretsFile } },
        targets: {
          main: {
            host: fx.server.host,
            port: fx.server.port,
            database: fx.targetDb,
            sslmode: 'disable',
            admin: { username: fx.rotator, password: `file:${secretsPath}/admin-password` },
          },
        },
        defaults: { schedule: { every: '1d' } },
        limits: { concurrency: 2, perTarget: 1 },
        accounts: [
          { name: account.name, target: 'main', role: account.role, provider: 'local', secret: `pg/${account.name}` },
        ],
      },
      ...extra,
    };
  }
  const secret = (): ExistingSecret => ({
    name: 'pgrotate-credentials',
    data: { 'state-password': fx.rotatorPassword, 'admin-password': fx.rotatorPassword },
  });

  it('run-due with the rendered args, ConfigMap, env and secret files rotates a due account; status reads it', async () => {
    const role = await fx.createRole(`helm_app_${fx.suffix}`);
    const values = chartValues('cronjob', { name: 'helm-app', role }, 'cron');
    const r = helmTemplate({ values });
    expect(r.code, r.stderr).toBe(0);
    for (const m of r.manifests) validateManifest(m);
    const cronJob = findManifest(r.manifests, 'CronJob');
    const pod = at<PodSpec>(cronJob, 'spec', 'jobTemplate', 'spec', 'template', 'spec');
    const { args, env } = materializePod(r.manifests, pod, secret());
    expect(args[0]).toBe('run-due');
    expect(env.PGROTATE_CONFIG).toBe(join(values.configMountPath, 'pgrotate.yaml'));
    // Not one secret value is in what the chart rendered.
    expect(r.stdout).not.toContain(fx.rotatorPassword);

    // First run: the account is synced into state and not yet due.
    const first = await fx.cliProcess(args, env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/run-due: 0 due/);

    await makeDue(fx, ['helm-app']);
    const second = await fx.cliProcess(args, env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/run-due: 1 due, 1 succeeded, 0 failed/);
    expect(`${second.stdout}${second.stderr}`).not.toContain(fx.rotatorPassword);
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    const current = await expectCurrentLogsIn(fx, provider, 'pg/helm-app');
    expect(current.username).toBe(role);
    expect((await auditCounts(fx, 'rotation.succeeded')).get('helm-app')).toBe(1);

    // The same pod environment serves any other command, e.g. a one-off `status`.
    const status = await fx.cliProcess(['status', '--json'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('helm-app');
    expect(status.stdout).not.toContain(current.password);
  });

  it('the worker Deployment: rendered args and env start a worker whose probes and Service port answer; it rotates and stops on SIGTERM', async () => {
    const role = await fx.createRole(`helm_wrk_${fx.suffix}`);
    const port = await freePort();
    const values = chartValues('worker', { name: 'helm-worker', role }, 'worker', {
      worker: { port, service: { port: 80 } },
    });
    values.config = {
      ...values.config,
      queue: { backend: 'postgres', tickInterval: '1s', lockDuration: '3s', shutdownTimeout: '10s' },
    } as typeof values.config;
    const r = helmTemplate({ values });
    expect(r.code, r.stderr).toBe(0);
    for (const m of r.manifests) validateManifest(m);
    const deployment = findManifest(r.manifests, 'Deployment');
    const pod = at<PodSpec>(deployment, 'spec', 'template', 'spec');
    const container = pod.containers[0];
    const { args, env } = materializePod(r.manifests, pod, secret());
    expect(args).toEqual(['worker']);
    // The Service's targetPort names the container port the config makes the worker listen on.
    const service = findManifest(r.manifests, 'Service');
    const targetPort = at<string>(service, 'spec', 'ports', 0, 'targetPort');
    const containerPort = container?.ports?.find((p) => p.name === targetPort)?.containerPort;
    expect(containerPort).toBe(port);

    const child = spawn(process.execPath, [CLI, ...args], { env, cwd: fx.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    try {
      // What the kubelet would call: the probes' paths on the probes' named port.
      const get = (probe: Probe | undefined) => {
        expect(probe?.httpGet.scheme).toBe('HTTP');
        const probePort = container?.ports?.find((p) => p.name === probe?.httpGet.port)?.containerPort;
        return fetch(`http://127.0.0.1:${probePort}${probe?.httpGet.path}`).then(
          (res) => res.status,
          () => 0,
        );
      };
      await eventually(
        async () => (await get(container?.livenessProbe)) === 200,
        `liveness probe answers 200 (output: ${output.slice(-500)})`,
      );
      await eventually(async () => (await get(container?.readinessProbe)) === 200, 'readiness probe answers 200');
      const metrics = await fetch(`http://127.0.0.1:${containerPort}/metrics`);
      expect(metrics.status).toBe(200);

      await eventually(async () => {
        await makeDue(fx, ['helm-worker']);
        return (await auditCounts(fx, 'rotation.succeeded')).has('helm-worker');
      }, 'the worker rotated the due account');
      await expectCurrentLogsIn(fx, new FileProvider({ name: 'local', path: fx.secretsFile }), 'pg/helm-worker');
    } finally {
      child.kill('SIGTERM');
    }
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    const result = await Promise.race([
      exited,
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), grace * 1000)),
    ]);
    expect(result, output.slice(-1500)).toEqual({ code: 0, signal: null });
    expect(output).not.toContain(fx.rotatorPassword);
  }, 120_000);
});
