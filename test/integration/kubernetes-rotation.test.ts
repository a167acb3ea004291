import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminKubeConfig, freshNamespace, secretStrings } from '../support/kube-test-client.js';
import { kubeServer } from '../support/kube-server.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// A rotation end to end through the built CLI (dist/; `npm run build` first when run alone) with the
// kubernetes provider on the test API server (the admin's kubeconfig) and PostgreSQL 15.

describe('rotation through Kubernetes Secrets (kube-apiserver)', () => {
  let fx: PgFixture;
  let namespace: string;
  let api: CoreV1Api;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    namespace = await freshNamespace('cli');
    api = adminKubeConfig().makeApiClient(CoreV1Api);
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('rotate writes the new credential as Secret data keys that log in; the old password stops working', async () => {
    const role = await fx.createRole(`k8s_one_${fx.suffix}`, { password: 'unmanaged-initial-password-1' });
    const secret = `billing-db-${fx.suffix}`.toLowerCase().replace(/_/g, '-');
    const { path, env } = fx.writeConfig({
      providers: { k8s: { type: 'kubernetes', namespace, kubeconfig: kubeServer().kubeconfig } },
      accounts: [{ name: 'billing', target: 'main', role, provider: 'k8s', secret }],
    });
    for (let i = 0; i < 2; i++) {
      const run = await fx.cli(['--config', path, 'rotate', 'billing', '--json'], env);
      expect(run.code, run.stderr).toBe(0);
      const data = await secretStrings(api, namespace, secret);
      expect(data).toMatchObject({
        username: role,
        host: fx.server.host,
        port: String(fx.server.port),
        dbname: fx.targetDb,
        engine: 'postgres',
      });
      expect(await fx.canLogin(role, data?.password as string)).toBe(true);
      expect(run.stdout + run.stderr).not.toContain(data?.password as string);
    }
    expect(await fx.canLogin(role, 'unmanaged-initial-password-1')).toBe(false);
    const companion = await secretStrings(api, namespace, `${secret}-pgrotate`);
    expect(Object.keys(companion ?? {})).toEqual(['previous']);
  });
});
