import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { REPO_ROOT } from './pg-fixture.js';

// Builds the Dockerfile with buildah and runs commands in the image, without a container engine:
// `buildah run --isolation chroot` (podman/crun cannot set rlimits on this kind of machine). The
// chroot shares the host's network, so a server on 127.0.0.1 is reachable from inside.

export const IMAGE = 'localhost/pgrotate:image-test';

export interface Exec {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a program to completion (asynchronously, so vitest's timeouts still fire). */
export function exec(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', reject);
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Fail (never skip) with the install hint when buildah, mmdebstrap or podman (image history) is missing. */
export function requireImageTools(): void {
  for (const tool of ['buildah', 'mmdebstrap', 'podman']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      throw new Error(
        `${tool} is not installed: run scripts/install/70-image-tools.sh (apt-get install buildah podman mmdebstrap)`,
      );
    }
  }
}

export interface BuiltImage {
  image: string;
  base: string;
  /** Wall time of the base image step and of `buildah bud`. */
  baseMs: number;
  buildMs: number;
}

/**
 * The local Debian base (cached by suite, scripts/image/debian-base.sh), then the Dockerfile
 * built on it exactly as users build it, only BASE_IMAGE differs. Layers are cached by buildah.
 */
export async function buildImage(): Promise<BuiltImage> {
  requireImageTools();
  const t0 = Date.now();
  const base = await exec('bash', [join(REPO_ROOT, 'scripts', 'image', 'debian-base.sh')], { timeoutMs: 15 * 60_000 });
  if (base.code !== 0) throw new Error(`debian-base.sh failed (${base.code}): ${base.stderr.slice(-2000)}`);
  const baseImage = base.stdout.trim().split('\n').pop() ?? '';
  const t1 = Date.now();
  const args = ['bud', '--isolation', 'chroot', '--layers', '--build-arg', `BASE_IMAGE=${baseImage}`, '-t', IMAGE];
  // npm inside the build trusts what the host trusts (a TLS-intercepting egress proxy's CA). The
  // bundle's directory is mounted over /mnt, which the base has: a new mount point would be
  // created in, and committed with, every layer built by a RUN step.
  const ca = process.env.NODE_EXTRA_CA_CERTS ?? '/etc/ssl/certs/ca-certificates.crt';
  if (existsSync(ca))
    args.push('--build-arg', `NODE_EXTRA_CA_CERTS=/mnt/${basename(ca)}`, '-v', `${dirname(ca)}:/mnt:ro`);
  const bud = await exec('buildah', [...args, REPO_ROOT], { timeoutMs: 30 * 60_000 });
  if (bud.code !== 0)
    throw new Error(`buildah bud failed (${bud.code}):\n${bud.stdout.slice(-3000)}\n${bud.stderr.slice(-3000)}`);
  return { image: IMAGE, base: baseImage, baseMs: t1 - t0, buildMs: Date.now() - t1 };
}

/** The parts of the image's OCI config the chart depends on. */
export interface ImageConfig {
  User?: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  ExposedPorts?: Record<string, unknown>;
}

/** `buildah inspect` of an image: its OCI config and its size (bytes, uncompressed layers). */
export async function inspectImage(
  image: string,
): Promise<{ config: ImageConfig; layers: Array<{ size: number; createdBy: string }> }> {
  const r = await exec('buildah', ['inspect', '--type', 'image', image]);
  if (r.code !== 0) throw new Error(`buildah inspect ${image}: ${r.stderr}`);
  const info = JSON.parse(r.stdout) as {
    OCIv1: { config: ImageConfig };
    History?: Array<{ created_by?: string; empty_layer?: boolean }>;
  };
  const hist = await exec('podman', ['history', '--no-trunc', '--format', '{{.Size}}\t{{.CreatedBy}}', image]);
  const layers =
    hist.code === 0
      ? hist.stdout
          .trim()
          .split('\n')
          .map((line) => {
            const [size, createdBy] = line.split('\t');
            return { size: parseSize(size ?? '0'), createdBy: createdBy ?? '' };
          })
      : [];
  return { config: info.OCIv1.config, layers };
}

/** podman's human size ("79.7 MB", "723 kB", "0 B") in bytes. */
function parseSize(text: string): number {
  const m = /^([\d.]+)\s*([kMG]?B)$/.exec(text.trim());
  if (!m) return 0;
  const unit = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 }[m[2] as 'B' | 'kB' | 'MB' | 'GB'];
  return Number(m[1]) * unit;
}

/** A bind mount into the container: what the kubelet would mount at `target`. */
export interface BindMount {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface RunOptions {
  /** uid:gid, as the pod's securityContext runs it. */
  user: string;
  env: Record<string, string>;
  mounts: BindMount[];
}

/** A working container of the image; its root filesystem is readable from the host. */
export class ImageContainer {
  private constructor(
    readonly id: string,
    /** The container's root filesystem as mounted on the host. */
    readonly rootfs: string,
  ) {}

  /** Create a container from the image and mount its root filesystem. */
  static async create(image: string): Promise<ImageContainer> {
    const from = await exec('buildah', ['from', '--pull-never', image]);
    if (from.code !== 0) throw new Error(`buildah from ${image}: ${from.stderr}`);
    const id = from.stdout.trim();
    const mount = await exec('buildah', ['mount', id]);
    if (mount.code !== 0) throw new Error(`buildah mount ${id}: ${mount.stderr}`);
    return new ImageContainer(id, mount.stdout.trim());
  }

  /** buildah's arguments for running argv in this container. */
  private runArgs(argv: string[], opts: RunOptions): string[] {
    const args = ['run', '--isolation', 'chroot', '--user', opts.user];
    for (const [k, v] of Object.entries(opts.env)) args.push('--env', `${k}=${v}`);
    // Parents before children, as container runtimes order them (a secret inside the config dir).
    const mounts = [...opts.mounts].sort((a, b) => a.target.split('/').length - b.target.split('/').length);
    for (const m of mounts) args.push('--volume', `${m.source}:${m.target}${m.readOnly ? ':ro' : ''}`);
    return [...args, this.id, '--', ...argv];
  }

  /** Run argv in the container to completion. */
  run(argv: string[], opts: RunOptions, timeoutMs = 120_000): Promise<Exec> {
    return exec('buildah', this.runArgs(argv, opts), { timeoutMs });
  }

  /** Start argv in the container and leave it running. */
  start(argv: string[], opts: RunOptions): ChildProcess {
    return spawn('buildah', this.runArgs(argv, opts), { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Unmount and delete the container. */
  async remove(): Promise<void> {
    await exec('buildah', ['rm', this.id]);
  }
}

/**
 * Every path of a root filesystem with its type, mode, owner, size and modification time, to
 * compare before and after a run. `skip` holds absolute in-container paths not to descend into;
 * `ignoreMtime` directories whose own modification time the runtime changes (their entries count).
 */
export function snapshotTree(root: string, skip: string[], ignoreMtime: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const abs = join(root, rel);
    const st = lstatSync(abs, { bigint: true });
    const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
    const mtime = ignoreMtime.includes(rel || '/') ? '-' : st.mtimeNs;
    out.set(rel || '/', `${kind} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${mtime}`);
    if (kind !== 'd' || skip.includes(rel || '/')) return;
    for (const name of readdirSync(abs)) walk(`${rel}/${name}`);
  };
  walk('');
  return out;
}

/** What differs between two snapshots: added, removed and changed paths. */
export function treeChanges(before: Map<string, string>, after: Map<string, string>): string[] {
  const changes: string[] = [];
  for (const [path, meta] of after) {
    const old = before.get(path);
    if (old === undefined) changes.push(`added ${path} (${meta})`);
    else if (old !== meta) changes.push(`changed ${path} (${old} -> ${meta})`);
  }
  for (const path of before.keys()) if (!after.has(path)) changes.push(`removed ${path}`);
  return changes;
}
