import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { freePort } from './free-port.js';

// Starts a real Lowkey Vault (an Azure Key Vault emulator, a Spring Boot jar) on free loopback
// ports. The jar comes from scripts/install/50-lowkey-vault.sh, or from LOWKEY_VAULT_JAR. Its
// https certificate is its own; it is fetched and written to a PEM file that tests pass as caFile.

export interface LowkeyVaultInfo {
  /** https://localhost:<port> (the name the emulator's certificate and default vault carry). */
  vaultUrl: string;
  /** PEM of the emulator's certificate. */
  caFile: string;
  /** Lowkey Vault accepts any bearer token. */
  token: string;
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

/** A Java new enough for current Lowkey Vault releases (25), else whatever `java` is on PATH. */
export function findJava(): string {
  for (const home of [process.env.LOWKEY_JAVA_HOME, '/usr/lib/jvm/temurin-25-jdk-amd64']) {
    if (home && existsSync(join(home, 'bin', 'java'))) return join(home, 'bin', 'java');
  }
  return 'java';
}

/** Start Lowkey Vault and wait until it serves https; throws with the reason when it cannot. */
export async function startLowkeyVault(): Promise<LowkeyVaultServer> {
  const jar = findLowkeyJar();
  if (!jar) {
    throw new Error(
      `Lowkey Vault is not installed: no jar at ${join(LOWKEY_CACHE_DIR, 'lowkey-vault-app.jar')} and LOWKEY_VAULT_JAR is not set (scripts/install/50-lowkey-vault.sh explains why)`,
    );
  }
  const port = await freePort();
  const tokenPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-lowkey-'));
  const child: ChildProcess = spawn(
    findJava(),
    ['-Xmx384m', '-XX:TieredStopAtLevel=1', '-jar', jar, `--server.port=${port}`, `--app.token.port=${tokenPort}`, '--LOWKEY_VAULT_RELAXED_PORTS=true'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
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
  const deadline = Date.now() + 120_000;
  let pem: string | null = null;
  while (!pem) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`Lowkey Vault exited with code ${child.exitCode} during startup:\n${output.slice(-3_000)}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Lowkey Vault did not answer on port ${port} within 120 s:\n${output.slice(-3_000)}`);
    }
    pem = await serverCertificate(port).catch(() => null);
    if (pem && !(await pingOk(port, pem))) pem = null;
    if (!pem) await new Promise((r) => setTimeout(r, 500));
  }
  const caFile = join(dir, 'lowkey-ca.pem');
  writeFileSync(caFile, pem);
  return { vaultUrl: `https://localhost:${port}`, caFile, token: 'lowkey-accepts-any-token', pid: child.pid ?? -1, stop };
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
    const req = request({ host: '127.0.0.1', port, path: '/ping', servername: 'localhost', ca, checkServerIdentity: () => undefined, timeout: 3_000 }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 500);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
