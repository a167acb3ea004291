import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { freePort } from './free-port.js';

// A real moto server (the AWS emulator, PyPI `moto[server]`) on loopback, for the AWS Secrets
// Manager tests and benchmark. Installed by scripts/install/40-moto.sh; PGROTATE_MOTO_SERVER
// names another binary (e.g. a newer moto in a virtualenv) to check the tests against it.

export interface MotoServer {
  endpoint: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Fake credentials moto accepts; given to pgrotate through the child's environment only. */
export const MOTO_CREDENTIALS = {
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_SESSION_TOKEN: 'testing',
} as const;

/** Start moto_server on a free loopback port and wait until it accepts connections. */
export async function startMotoServer(opts: { env?: Record<string, string> } = {}): Promise<MotoServer> {
  const bin = process.env.PGROTATE_MOTO_SERVER ?? 'moto_server';
  const port = await freePort();
  const child = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    // Keep only the tail: moto logs every request.
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<string>((resolve) => {
    child.on('error', (err) =>
      resolve(`cannot run ${bin}: ${err.message} (install it with scripts/install/40-moto.sh)`),
    );
    child.on('exit', (code, signal) =>
      resolve(`${bin} exited (${code ?? signal}) before accepting connections: ${stderr.trim().slice(-1000)}`),
    );
  });
  const ready = waitForPort(port, 30_000);
  const outcome = await Promise.race([ready.then(() => null), exited]);
  if (outcome !== null) {
    child.kill('SIGKILL');
    throw new Error(outcome);
  }
  return { endpoint: `http://127.0.0.1:${port}`, port, pid: child.pid as number, stop: () => stopChild(child) };
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`moto_server did not listen on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await gone;
  clearTimeout(timer);
}

/** How many IAM calls `createRestrictedUser` makes: the server's INITIAL_NO_AUTH_ACTION_COUNT. */
export const RESTRICTED_SETUP_ACTIONS = 4;

/**
 * On a moto server started with INITIAL_NO_AUTH_ACTION_COUNT=RESTRICTED_SETUP_ACTIONS, create an
 * IAM user allowed `allowed` Secrets Manager actions only and return its access key. Every later
 * request is authenticated and checked against IAM policies, as AWS does.
 */
export async function createRestrictedUser(
  endpoint: string,
  allowed: string[],
): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const user = 'pgrotate-restricted';
  const policy = JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: allowed.map((a) => `secretsmanager:${a}`), Resource: '*' }],
  });
  await iamCall(endpoint, { Action: 'CreateUser', UserName: user });
  const created = await iamCall(endpoint, {
    Action: 'CreatePolicy',
    PolicyName: `${user}-policy`,
    PolicyDocument: policy,
  });
  const policyArn = /<Arn>([^<]+)<\/Arn>/.exec(created)?.[1];
  if (!policyArn) throw new Error(`moto CreatePolicy returned no ARN: ${created.slice(0, 300)}`);
  await iamCall(endpoint, { Action: 'AttachUserPolicy', UserName: user, PolicyArn: policyArn });
  const key = await iamCall(endpoint, { Action: 'CreateAccessKey', UserName: user });
  const accessKeyId = /<AccessKeyId>([^<]+)</.exec(key)?.[1];
  const secretAccessKey = /<SecretAccessKey>([^<]+)</.exec(key)?.[1];
  if (!accessKeyId || !secretAccessKey) throw new Error('moto CreateAccessKey returned no key');
  return { accessKeyId, secretAccessKey };
}

/** An IAM query-protocol call; only valid while the server still skips authentication. */
async function iamCall(endpoint: string, params: Record<string, string>): Promise<string> {
  const res = await fetch(endpoint, {
    method: 'POST',
    body: new URLSearchParams({ Version: '2010-05-08', ...params }).toString(),
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      // moto routes a request to a service by the credential scope of its Authorization header.
      authorization:
        'AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=unused',
    },
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`moto IAM ${params.Action} failed: HTTP ${res.status} ${text.slice(0, 300)}`);
  return text;
}
