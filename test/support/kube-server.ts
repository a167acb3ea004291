import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './pg-fixture.js';
import { service } from './provided.js';

// A real kube-apiserver + etcd pair on 127.0.0.1, started by the team's shared tool
// (../shared/tools/kube-apiserver/start.sh, built by scripts/install/80-kube-apiserver.sh).
// No kubelet: objects are validated and stored, nothing reconciles them, pods never run.

export const KUBE_VERSION = 'v1.34.4';

/** Connection facts of the test API server (an admin in system:masters). */
export interface KubeServerInfo {
  /** Kubeconfig of the admin user (a static token). */
  kubeconfig: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** The admin's bearer token. */
  token: string;
  /** The CA that signed the serving certificate (PEM file). */
  caFile: string;
  /** The pair's temp dir (logs, pki). */
  stateDir: string;
  /** Dir holding kube-apiserver, etcd and kubectl. */
  binDir: string;
  /** Set instead of the above when the server could not start; tests fail with it. */
  startupError?: string;
}

/** The shared tool's folder (PGROTATE_SHARED_DIR overrides the sibling `shared`). */
export function kubeToolDir(): string {
  return join(process.env.PGROTATE_SHARED_DIR ?? join(REPO_ROOT, '..', 'shared'), 'tools', 'kube-apiserver');
}

/** Where the shared build puts the binaries. */
export function kubeBinDir(): string {
  return process.env.KUBE_APISERVER_BIN ?? join(homedir(), '.cache', `kube-apiserver-${KUBE_VERSION}`, 'bin');
}

/** Starts a pair (5–8 s); returns its facts, or a startupError naming what is missing. */
export function startKubeServer(): KubeServerInfo {
  const binDir = kubeBinDir();
  const none = { kubeconfig: '', server: '', token: '', caFile: '', stateDir: '', binDir };
  if (!existsSync(join(binDir, 'kube-apiserver')) || !existsSync(join(binDir, 'etcd'))) {
    return {
      ...none,
      startupError: `no kube-apiserver/etcd in ${binDir}: run bash scripts/install/80-kube-apiserver.sh`,
    };
  }
  try {
    const out = execFileSync('bash', [join(kubeToolDir(), 'start.sh')], {
      env: { ...process.env, KUBE_APISERVER_BIN: binDir },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 180_000,
    });
    const kv = Object.fromEntries(
      out
        .split('\n')
        .map((l) => /^([A-Z_]+)=(.*)$/.exec(l.trim()))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => [m[1], m[2]]),
    );
    return {
      kubeconfig: kv.KUBECONFIG ?? '',
      server: kv.KUBE_SERVER ?? '',
      token: kv.KUBE_TOKEN ?? '',
      caFile: kv.KUBE_CA_FILE ?? '',
      stateDir: kv.STATE_DIR ?? '',
      binDir,
    };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { ...none, startupError: `kube-apiserver did not start: ${(e.stderr ?? e.message).slice(-2000)}` };
  }
}

/** Stops the pair and removes its temp dir. */
export function stopKubeServer(info: KubeServerInfo): void {
  if (!info.stateDir) return;
  execFileSync('bash', [join(kubeToolDir(), 'stop.sh'), info.stateDir], { stdio: 'ignore', timeout: 30_000 });
}

/** The test API server's facts; throws its startup error, if any. */
export function kubeServer(): KubeServerInfo {
  const info = service<KubeServerInfo>('kube');
  if (info.startupError) throw new Error(info.startupError);
  return info;
}

/** Runs the real kubectl against the test API server as admin; returns stdout. */
export function kubectl(args: string[], input?: string): string {
  const info = kubeServer();
  return execFileSync(
    join(info.binDir, 'kubectl'),
    ['--kubeconfig', info.kubeconfig, '--cache-dir', join(info.stateDir, 'kubectl-cache'), ...args],
    {
      encoding: 'utf8',
      input,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: 60_000,
    },
  );
}

/** Like kubectl(), but returns the exit status and both streams instead of throwing (e.g. `auth can-i`). */
export function kubectlResult(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const info = kubeServer();
  const r = spawnSync(
    join(info.binDir, 'kubectl'),
    ['--kubeconfig', info.kubeconfig, '--cache-dir', join(info.stateDir, 'kubectl-cache'), ...args],
    {
      encoding: 'utf8',
      input,
      timeout: 60_000,
    },
  );
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
