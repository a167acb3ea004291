import { execFileSync, spawn } from 'node:child_process';
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { createApp } from '../../src/app/app-context.js';
import { loadConfigFile } from '../../src/app/load-config.js';
import { startHttpServer } from '../../src/entry/http/http-server.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { freePort } from '../support/free-port.js';
import { eventually, startWorker, stateClient, testQueue } from '../support/jobs-fixture.js';
import { CLI, createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// The HTTP side of long-running processes, as child processes of the built CLI: `pgrotate worker`
// with `http` configured (queue-backed API, readiness of the queue, metrics of the worker's own
// rotations) and `pgrotate serve`; plus TLS.

const OPS_TOKEN = 'ops-token-worker-0123456789';
const HR_TOKEN = 'hr-token-worker-0123456789';

let fx: PgFixture;

beforeAll(async () => {
  fx = await createPgFixture(pgServer('pg15'));
});

afterAll(async () => {
  await fx?.cleanup();
});

function metricValue(text: string, series: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : null;
}

describe('HTTP in long-running processes', () => {
  it('pgrotate worker serves readiness, the queue-backed API and metrics of the rotations it runs', async () => {
    const role = await fx.createRole(`wk_app_${fx.suffix}`, { password: 'initial-worker-password-1' });
    const port = await freePort();
    const { path, env } = fx.writeConfig({
      accounts: [
        {
          name: 'app',
          target: 'main',
          role,
          provider: 'local',
          secret: 'pg/app',
          exposedTo: ['dave'],
          schedule: 'manual',
        },
      ],
      extra: {
        queue: testQueue('postgres'),
        http: {
          listen: `127.0.0.1:${port}`,
          tokens: [
            { name: 'ops', token: 'env:TEST_OPS_TOKEN', actions: ['read', 'rotate'] },
            { name: 'hr', token: 'env:TEST_HR_TOKEN', actions: ['offboard'] },
          ],
        },
      },
    });
    const worker = startWorker(fx, path, { ...env, TEST_OPS_TOKEN: OPS_TOKEN, TEST_HR_TOKEN: HR_TOKEN });
    const base = `http://127.0.0.1:${port}`;
    try {
      await eventually(
        async () => (await fetch(`${base}/readyz`).catch(() => null))?.status === 200,
        'worker /readyz',
        30_000,
      );
      expect(await (await fetch(`${base}/readyz`)).json()).toEqual({
        status: 'ready',
        checks: { state: 'ok', queue: 'ok' },
      });

      const res = await fetch(`${base}/v1/accounts/app/rotate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${OPS_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ reason: 'from the ticket system' }),
      });
      expect(res.status).toBe(202);
      const body = (await res.json()) as { queued: string };
      expect(body.queued).toMatch(/^on-demand:app:/);
      const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
      await eventually(async () => (await provider.getCurrent('pg/app')) !== null, 'rotation by the worker');
      const current = await provider.getCurrent('pg/app');
      expect(await fx.canLogin(role, current?.password as string)).toBe(true);

      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metricValue(metrics, 'pgrotate_rotations_total{outcome="succeeded",target="main"}')).toBe(1);
      expect(metricValue(metrics, 'pgrotate_queue_depth')).not.toBeNull();
      expect(metricValue(metrics, 'pgrotate_credential_age_seconds{account="app"}')).toBeLessThan(120);

      // Offboarding through the worker's API is queued (202); the completion is recorded when the workers finish.
      const off = await fetch(`${base}/v1/offboard`, {
        method: 'POST',
        headers: { authorization: `Bearer ${HR_TOKEN}` },
        body: JSON.stringify({ principal: 'dave' }),
      });
      expect(off.status).toBe(202);
      expect(await off.json()).toMatchObject({ principal: 'dave', accounts: ['app'] });
      await eventually(async () => {
        const c = await stateClient(fx);
        try {
          const r = await c.query(
            "SELECT detail FROM pgrotate.audit_events WHERE kind = 'offboard.completed' AND actor = 'api:hr'",
          );
          return r.rows.length === 1 && JSON.stringify(r.rows[0].detail).includes('"rotated":["app"]');
        } finally {
          await c.end();
        }
      }, 'offboard.completed by api:hr');
      const after = await provider.getCurrent('pg/app');
      expect(after?.rotationId).not.toBe(current?.rotationId);
      for (const secret of [current?.password as string, after?.password as string, OPS_TOKEN, HR_TOKEN])
        expect(worker.output()).not.toContain(secret);
    } finally {
      const exit = await worker.stop();
      expect(exit.code, worker.output()).toBe(0);
    }
  });

  it('pgrotate serve answers health checks and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const { path, env } = fx.writeConfig({ accounts: [] });
    const child = spawn(process.execPath, [CLI, '--config', path, 'serve', '--listen', `127.0.0.1:${port}`], {
      env,
      cwd: fx.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await eventually(
      async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.status === 200,
      'serve /healthz',
    );
    expect(out).toContain(`pgrotate serving on http://127.0.0.1:${port}`);
    expect((await fetch(`http://127.0.0.1:${port}/v1/accounts`)).status).toBe(401);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('serves HTTPS with the configured certificate', async () => {
    const key = join(fx.dir, 'tls.key');
    const cert = join(fx.dir, 'tls.crt');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const { path, env } = fx.writeConfig({
      accounts: [],
      extra: { http: { listen: '127.0.0.1:0', tls: { certFile: cert, keyFile: key } } },
    });
    const redactor = new Redactor();
    const app = await createApp(loadConfigFile(path, env), {
      redactor,
      log: createLogger(redactor, { destination: new PassThrough() }),
      env,
    });
    const server = await startHttpServer({ app });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(`${server.url}/healthz`, { ca: readFileSync(cert) }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(200);
      // Plain HTTP to the TLS port is not served.
      await expect(fetch(server.url.replace('https:', 'http:') + '/healthz')).rejects.toThrow();
    } finally {
      await server.close();
      await app.close();
    }
  });
});
