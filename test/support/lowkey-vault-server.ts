import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { freePort } from './free-port.js';

// Starts a real Lowkey Vault (an Azure Key Vault emulator, a Spring Boot jar) on free loopback
// ports. The jar comes from scripts/install/50-lowkey-vault.sh (LOWKEY_VAULT_JAR, the cached jar,
// or a build from ../shared/tools/lowkey-vault). Its https certificate is its own; it is fetched
// and written to a PEM file that tests pass as caFile.

export interface LowkeyVaultInfo {
  /** https://localhost:<port> (the name the emulator's certificate and default vault carry). */
  vaultUrl: string;
  /** PEM of the emulator's certificate. */
  caFile: string;
  /** Lowkey Vault accepts any bearer token. */
  token: string;
  /** Plain-http port of its token/metadata API (/metadata/default-cert/lowkey-vault.p12, password changeit). */
  tokenPort: number;
  pid: number;
}

export interface LowkeyVaultServer extends LowkeyVaultInfo {
  stop(): Promise<void>;
}

export const LOWKEY_CACHE_DIR = join(homedir(), '.cache', 'pgrotate', 'lowkey-vault');

/** The Lowkey Vault jar, or null when it is not installed. */
export function findLowkeyJar(): string | null {
  const fromEnv = process.env.LOWKEY_VAULT_JAR;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  const cached = join(LOWKEY_CACHE_DIR, 'lowkey-vault-app.jar');
  return existsSync(cached) ? cached : null;
}

const REQUIRED_JAVA = 25;

/**
 * A Java new enough for Lowkey Vault 7.x (25), chosen like ../shared/tools/lowkey-vault/build.sh
 * does: LOWKEY_VAULT_JAVA_HOME (or LOWKEY_JAVA_HOME), JAVA_HOME, then any JDK under /usr/lib/jvm;
 * else `java` on PATH (an older one fails at startup with UnsupportedClassVersionError, which the
 * startup error then shows).
 */
export function findJava(): string {
  const jvmDir = '/usr/lib/jvm';
  const installed = existsSync(jvmDir)
    ? readdirSync(jvmDir)
        .sort()
        .reverse()
        .map((d) => join(jvmDir, d))
    : [];
  for (const home of [
    process.env.LOWKEY_VAULT_JAVA_HOME,
    process.env.LOWKEY_JAVA_HOME,
    process.env.JAVA_HOME,
    ...installed,
  ]) {
    if (home && existsSync(join(home, 'bin', 'java')) && javaMajor(home) >= REQUIRED_JAVA)
      return join(home, 'bin', 'java');
  }
  return 'java';
}

/** Major version from a JDK's `release` file (JAVA_VERSION="25.0.1"), or 0. */
function javaMajor(home: string): number {
  try {
    const m = /^JAVA_VERSION="(\d+)/m.exec(readFileSync(join(home, 'release'), 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Start Lowkey Vault and wait until it serves https; throws with the reason, including the
 * emulator's own output, when it cannot. A loaded machine can need a minute for Spring Boot.
 */
export async function startLowkeyVault(
  timeoutMs = Number(process.env.PGROTATE_LOWKEY_START_TIMEOUT_MS ?? 180_000),
): Promise<LowkeyVaultServer> {
  const jar = findLowkeyJar();
  if (!jar) {
    throw new Error(
      `Lowkey Vault is not installed: no jar at ${process.env.LOWKEY_VAULT_JAR || join(LOWKEY_CACHE_DIR, 'lowkey-vault-app.jar')}; run scripts/install/50-lowkey-vault.sh (it builds one from ../shared/tools/lowkey-vault, or says how to get a release jar)`,
    );
  }
  const port = await freePort();
  const tokenPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-lowkey-'));
  const child: ChildProcess = spawn(
    findJava(),
    [
      '-Xmx384m',
      '-XX:TieredStopAtLevel=1',
      '-jar',
      jar,
      `--server.port=${port}`,
      `--app.token.port=${tokenPort}`,
      '--LOWKEY_VAULT_RELAXED_PORTS=true',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let spawnError: Error | null = null;
  child.on('error', (err) => (spawnError = err));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          r(undefined);
        }, 5_000);
        child.once('exit', () => {
          clearTimeout(t);
          r(undefined);
        });
      });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  let pem: string | null = null;
  while (!pem) {
    if (spawnError) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(
        `Lowkey Vault could not be started (${findJava()} -jar ${jar}): ${(spawnError as Error).message}`,
      );
    }
    if (child.exitCode !== null) {
      await stop();
      throw new Error(
        `Lowkey Vault (${jar}) exited with code ${child.exitCode} during startup; its output:\n${output.slice(-3_000)}`,
      );
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `Lowkey Vault did not answer on port ${port} within ${Math.round(timeoutMs / 1000)} s; its output:\n${output.slice(-3_000)}`,
      );
    }
    pem = await serverCertificate(port).catch(() => null);
    if (pem && !(await pingOk(port, pem))) pem = null;
    if (!pem) await new Promise((r) => setTimeout(r, 500));
  }
  const caFile = join(dir, 'lowkey-ca.pem');
  writeFileSync(caFile, pem);
  return {
    vaultUrl: `https://localhost:${port}`,
    caFile,
    token: 'lowkey-accepts-any-token',
    tokenPort,
    pid: child.pid ?? -1,
    stop,
  };
}

/** The PEM of the certificate the server presents. */
function serverCertificate(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.end();
      if (!raw) return reject(new Error('no certificate'));
      const b64 = raw.toString('base64').replace(/(.{64})/g, '$1\n');
      resolve(`-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`);
    });
    socket.on('error', reject);
    socket.setTimeout(3_000, () => socket.destroy(new Error('timeout')));
  });
}

/** Lowkey Vault's /ping answers once the application (not just the socket) is up. */
async function pingOk(port: number, ca: string): Promise<boolean> {
  const { request } = await import('node:https');
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/ping',
        servername: 'localhost',
        ca,
        checkServerIdentity: () => undefined,
        timeout: 3_000,
      },
      (res) => {
        res.resume();
        resolve((res.statusCode ?? 500) < 500);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
