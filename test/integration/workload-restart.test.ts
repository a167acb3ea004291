import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { freshNamespace, serviceAccountKubeconfig } from '../support/kube-test-client.js';
import { kubectl, kubeServer } from '../support/kube-server.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';

// Rollout restarts after a promoted rotation, against the real test API server: the pod
// template's annotations change (what `kubectl rollout restart` does), only after the promote,
// never for a dry run or a failed rotation; a missing workload or a refused permission is a
// warning, an audit event and an alert, and the rotation stands. The credential is in the file
// provider: restarts work with every store.

interface Workload {
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  name: string;
}

/** A minimal valid workload manifest (no kubelet runs here, so its pods never start). */
function manifest(ns: string, w: Workload): string {
  const labels = { app: w.name };
  const template = {
    metadata: { labels },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  };
  const spec: Record<string, unknown> = { selector: { matchLabels: labels }, template };
  if (w.kind === 'StatefulSet') spec.serviceName = w.name;
  return JSON.stringify({ apiVersion: 'apps/v1', kind: w.kind, metadata: { name: w.name, namespace: ns }, spec });
}

/** The pod template annotations of a workload (what a restart changes). */
function annotations(ns: string, w: Workload): Record<string, string> {
  const obj = JSON.parse(kubectl(['-n', ns, 'get', w.kind.toLowerCase(), w.name, '-o', 'json'])) as {
    spec: { template: { metadata: { annotations?: Record<string, string> } } };
  };
  return obj.spec.template.metadata.annotations ?? {};
}

interface RunJson {
  results: Array<{
    outcome: string;
    rotationId: string | null;
    warnings: string[];
    restarts: Array<{ kind: string; namespace: string; name: string; restarted: boolean; problem: string | null }>;
  }>;
}

describe('rollout restarts after a promoted rotation (kube-apiserver + pg15)', () => {
  let fx: PgFixture;
  let ns: string;
  const api: Workload = { kind: 'Deployment', name: 'billing-api' };
  const db: Workload = { kind: 'StatefulSet', name: 'billing-cache' };
  const agent: Workload = { kind: 'DaemonSet', name: 'billing-agent' };
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    ns = await freshNamespace('restart');
    for (const w of [api, db, agent]) kubectl(['apply', '-f', '-'], manifest(ns, w));
  });
  afterAll(async () => {
    kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
    await fx?.cleanup();
  });

  const restartList = (extra: Workload[] = []) => [api, db, agent, ...extra].map((w) => ({ ...w, namespace: ns }));
  const secretOf = (name: string) =>
    (JSON.parse(readFileSync(fx.secretsFile, 'utf8')) as Record<string, { password: string }>)[name]?.password;

  it('restarts each workload once the new credential is promoted; a dry run restarts nothing', async () => {
    const role = await fx.createRole(`rs_ok_${fx.suffix}`);
    const { path, env } = fx.writeConfig({
      accounts: [
        { name: 'billing', target: 'main', role, provider: 'local', secret: 'billing', restart: restartList() },
      ],
      extra: { kubernetes: { kubeconfig: kubeServer().kubeconfig } },
    });
    const dry = await fx.cli(['--config', path, 'rotate', 'billing', '--dry-run', '--json'], env);
    expect(dry.code, dry.stderr).toBe(0);
    for (const w of [api, db, agent]) expect(annotations(ns, w)['pgrotate.io/rotated-at']).toBeUndefined();

    const before = Date.now();
    const r = await fx.cli(['--config', path, 'rotate', 'billing', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const result = (JSON.parse(r.stdout) as RunJson).results[0];
    expect(result?.outcome).toBe('succeeded');
    expect(result?.restarts.map((o) => [o.kind, o.name, o.restarted])).toEqual([
      ['Deployment', 'billing-api', true],
      ['StatefulSet', 'billing-cache', true],
      ['DaemonSet', 'billing-agent', true],
    ]);
    for (const w of [api, db, agent]) {
      const a = annotations(ns, w);
      expect(a['pgrotate.io/rotation-id']).toBe(result?.rotationId);
      expect(Date.parse(a['pgrotate.io/rotated-at'] ?? '')).toBeGreaterThanOrEqual(before - 1000);
    }
    // Only annotations were sent: the workloads hold no password.
    const password = secretOf('billing') as string;
    expect(await fx.canLogin(role, password)).toBe(true);
    for (const w of [api, db, agent])
      expect(kubectl(['-n', ns, 'get', w.kind.toLowerCase(), w.name, '-o', 'yaml'])).not.toContain(password);
    const events = await fx.stateQuery<{ kind: string; n: string }>(
      `SELECT kind, count(*)::text AS n FROM pgrotate.audit_events WHERE account = 'billing' AND kind LIKE 'workload.%' GROUP BY kind`,
    );
    expect(events.rows).toEqual([{ kind: 'workload.restarted', n: '3' }]);
  });

  it('a failed rotation restarts nothing', async () => {
    const role = await fx.createRole(`rs_fail_${fx.suffix}`);
    const { path, env } = fx.writeConfig({
      accounts: [
        // The role does not exist: pre-flight refuses, nothing is promoted.
        {
          name: 'broken',
          target: 'main',
          role: `${role}_missing`,
          provider: 'local',
          secret: 'broken',
          restart: restartList(),
        },
      ],
      extra: { kubernetes: { kubeconfig: kubeServer().kubeconfig } },
    });
    const stamps = [api, db, agent].map((w) => annotations(ns, w)['pgrotate.io/rotation-id']);
    const r = await fx.cli(['--config', path, 'rotate', 'broken', '--json'], env);
    expect(r.code).not.toBe(0);
    expect((JSON.parse(r.stdout) as RunJson).results[0]?.restarts).toEqual([]);
    expect([api, db, agent].map((w) => annotations(ns, w)['pgrotate.io/rotation-id'])).toEqual(stamps);
  });

  it('a missing workload and a refused patch are warnings, audit events and one alert; the rotation stands', async () => {
    const hook = await startWebhookReceiver();
    try {
      const role = await fx.createRole(`rs_warn_${fx.suffix}`);
      const missing: Workload = { kind: 'Deployment', name: 'no-such-api' };
      const { path, env } = fx.writeConfig({
        accounts: [
          {
            name: 'partly',
            target: 'main',
            role,
            provider: 'local',
            secret: 'partly',
            restart: restartList([missing]),
          },
        ],
        extra: {
          kubernetes: { kubeconfig: kubeServer().kubeconfig },
          alerts: { webhooks: [{ url: hook.url, events: ['workload.restart-failed'] }] },
        },
      });
      const r = await fx.cli(['--config', path, 'rotate', 'partly', '--json'], env);
      expect(r.code, r.stderr).toBe(0);
      const result = (JSON.parse(r.stdout) as RunJson).results[0];
      expect(result?.outcome).toBe('succeeded');
      const failed = result?.restarts.filter((o) => !o.restarted) ?? [];
      expect(failed).toEqual([
        expect.objectContaining({
          kind: 'Deployment',
          name: 'no-such-api',
          problem: expect.stringMatching(/not found/),
        }),
      ]);
      expect(result?.warnings.join('\n')).toMatch(
        new RegExp(`could not restart Deployment ${ns}/no-such-api: not found .*\\(the rotation stands\\)`),
      );
      expect(await fx.canLogin(role, secretOf('partly') as string)).toBe(true);
      const [alert] = await hook.waitFor(1);
      const body = JSON.parse(alert?.body ?? '{}') as { event: string; account: string; message: string };
      expect(body).toMatchObject({ event: 'workload.restart-failed', account: 'partly' });
      expect(body.message).toContain(`Deployment ${ns}/no-such-api`);
      expect(alert?.body).not.toContain(secretOf('partly') as string);

      // A ServiceAccount that may not patch workloads (it may only read Secrets): 403 for each.
      const weak = await serviceAccountKubeconfig(ns, ['get']);
      const denied = fx.writeConfig({
        accounts: [
          { name: 'denied', target: 'main', role, provider: 'local', secret: 'partly', restart: restartList() },
        ],
        extra: { kubernetes: { kubeconfig: weak } },
      });
      const d = await fx.cli(['--config', denied.path, 'rotate', 'denied', '--json'], denied.env);
      expect(d.code, d.stderr).toBe(0);
      const dr = (JSON.parse(d.stdout) as RunJson).results[0];
      expect(dr?.outcome).toBe('succeeded');
      expect(
        dr?.restarts.every(
          (o) => !o.restarted && /forbidden: pgrotate may not patch it \(HTTP 403/.test(o.problem ?? ''),
        ),
      ).toBe(true);
      expect(await fx.canLogin(role, secretOf('partly') as string)).toBe(true);
      const events = await fx.stateQuery<{ kind: string; n: string }>(
        `SELECT kind, count(*)::text AS n FROM pgrotate.audit_events WHERE account IN ('partly', 'denied') AND kind LIKE 'workload.%' GROUP BY kind ORDER BY kind`,
      );
      expect(events.rows).toEqual([
        { kind: 'workload.restart-failed', n: '4' },
        { kind: 'workload.restarted', n: '3' },
      ]);
    } finally {
      await hook.close();
    }
  });

  it('an offboarding rotation restarts too; defaults.restart applies to accounts without their own list', async () => {
    const role = await fx.createRole(`rs_off_${fx.suffix}`);
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'leaver', target: 'main', role, provider: 'local', secret: 'leaver', exposedTo: ['alice'] }],
      defaults: { restart: [{ ...api, namespace: ns }] },
      extra: { kubernetes: { kubeconfig: kubeServer().kubeconfig } },
    });
    const r = await fx.cli(['--config', path, 'offboard', 'alice', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const rotationId = (
      await fx.stateQuery<{ id: string }>(
        `SELECT id FROM pgrotate.rotations WHERE account = 'leaver' ORDER BY started_at DESC LIMIT 1`,
      )
    ).rows[0]?.id;
    expect(annotations(ns, api)['pgrotate.io/rotation-id']).toBe(rotationId);
  });

  it('bad restart entries are refused at load, naming the account and key; nothing is rotated', async () => {
    const role = await fx.createRole(`rs_bad_${fx.suffix}`);
    for (const [entry, why] of [
      [{ kind: 'Pod', namespace: ns, name: 'x' }, /accounts\[0\]\.restart\[0\]\.kind: Invalid option/],
      [
        { kind: 'Deployment', namespace: 'Bad_NS', name: 'x' },
        /accounts\[0\]\.restart\[0\]\.namespace: a Kubernetes namespace/,
      ],
      [{ kind: 'Deployment', namespace: ns }, /accounts\[0\]\.restart\[0\]\.name: /],
    ] as const) {
      const { path, env } = fx.writeConfig({
        accounts: [{ name: 'bad', target: 'main', role, provider: 'local', secret: 'bad', restart: [entry] }],
      });
      const r = await fx.cli(['--config', path, 'rotate', 'bad'], env);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(why);
    }
    expect(secretOf('bad')).toBeUndefined();
  });
});
