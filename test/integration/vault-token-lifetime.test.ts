import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app/app-context.js';
import { loadConfigFile } from '../../src/app/load-config.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { runInline } from '../../jobs/inline-runner.js';
import type { VaultProvider } from '../../providers/vault/vault-provider.js';
import { baoApi, type BaoServerInfo } from '../support/bao-server.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';

// Issue 24.4: the Vault token's life in a long-running process, against real OpenBao and pg15.
//  - A renewable token is looked up and renewed from start-up: an app that makes no Vault call
//    for longer than the token's TTL still rotates (renewal used to start at the first call).
//  - An expired or revoked token is reported as such (it used to read as a missing "read"
//    capability), naming account, target and provider, and nothing is changed.
//  - The start-up call is cut off by close(), so it holds up neither a library user's exit nor
//    a short CLI command when Vault does not answer.

const bao = () => service<BaoServerInfo>('bao');
const root = () => baoApi(bao().address, bao().rootToken);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A child token of the root token (root policy). */
async function createToken(body: Record<string, unknown>): Promise<string> {
  const res = await root()('POST', 'auth/token/create', body);
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  return (res.json.auth as { client_token: string }).client_token;
}

/** Wait until OpenBao no longer knows `token` (its TTL ran out), polling the server. */
async function untilGone(token: string, withinMs: number): Promise<void> {
  const until = Date.now() + withinMs;
  while ((await root()('POST', 'auth/token/lookup', { token })).status === 200) {
    if (Date.now() > until) throw new Error(`token still alive after ${withinMs} ms`);
    await sleep(200);
  }
}

describe('vault provider: the token lives as long as the process (pg15 + OpenBao)', () => {
  let fx: PgFixture;
  const run = randomUUID().slice(0, 8);
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  const config = (accounts: unknown[], token: string, address = bao().address, extra: Record<string, unknown> = {}) => {
    const { path, env } = fx.writeConfig({
      accounts,
      providers: { bao: { type: 'vault', address, mount: 'secret', token: 'env:BAO_LIFETIME_TOKEN', ...extra } },
    });
    return { path, env: { ...env, BAO_LIFETIME_TOKEN: token, PGROTATE_LOG_LEVEL: 'silent' } };
  };

  it('an app idle for longer than its renewable token TTL still rotates: renewal runs from start-up', async () => {
    const ttlS = 5;
    const token = await createToken({ ttl: `${ttlS}s`, explicit_max_ttl: '10m', renewable: true });
    const role = await fx.createRole(`tl_idle_${fx.suffix}`, { password: 'tl-idle-initial-password' });
    const secret = `lifetime-${run}/idle`;
    const { path, env } = config([{ name: 'idle', target: 'main', role, provider: 'bao', secret }], token);
    const redactor = new Redactor();
    const app = await createApp(loadConfigFile(path, env), {
      env,
      redactor,
      log: createLogger(redactor, { level: 'silent' }),
    });
    try {
      // No Vault call by the app for longer than the TTL (the scenario itself: a worker waiting
      // for its first due rotation). Without renewal the token is gone after ttlS seconds.
      await sleep((ttlS + 2) * 1000);
      const results = await runInline(app, ['idle'], {
        kind: 'on-demand',
        reason: 'idle token test',
        requestedBy: 'test',
        terminateSessions: false,
        requestedAt: await app.state.now(),
      });
      expect(
        results.map((r) => r.outcome),
        JSON.stringify(results),
      ).toEqual(['succeeded']);
      const current = (await root()('GET', `secret/data/${secret}`)).json.data as { data: { password: string } };
      expect(await fx.canLogin(role, current.data.password)).toBe(true);
      expect((app.providers.get('bao') as VaultProvider).authCounters.renewals).toBeGreaterThanOrEqual(1);
      const look = await root()('POST', 'auth/token/lookup', { token });
      expect((look.json.data as { ttl: number }).ttl).toBeGreaterThan(0);
    } finally {
      await app.close();
    }
  });

  it('AppRole: the provider logs in at start-up, before any call', async () => {
    const mount = `approle-tl-${run}`;
    expect((await root()('POST', `sys/auth/${mount}`, { type: 'approle' })).status).toBe(204);
    await root()('POST', `auth/${mount}/role/pgrotate`, { token_policies: ['default'], token_ttl: '1h' });
    const roleId = ((await root()('GET', `auth/${mount}/role/pgrotate/role-id`)).json.data as { role_id: string })
      .role_id;
    const secretId = (
      (await root()('POST', `auth/${mount}/role/pgrotate/secret-id`, {})).json.data as { secret_id: string }
    ).secret_id;
    const { path, env } = fx.writeConfig({
      accounts: [],
      providers: {
        bao: {
          type: 'vault',
          address: bao().address,
          mount: 'secret',
          auth: { method: 'approle', roleId, secretId, mount },
        },
      },
    });
    const app = await createApp(loadConfigFile(path, env), { env });
    try {
      const vault = app.providers.get('bao') as VaultProvider;
      const until = Date.now() + 10_000;
      while (vault.authCounters.logins === 0 && Date.now() < until) await sleep(50);
      expect(vault.authCounters.logins).toBe(1);
    } finally {
      await app.close();
    }
  });

  for (const how of ['expired', 'revoked'] as const) {
    it(`a token that is ${how}: the rotation says the token is expired or revoked, names account, target and provider; nothing changed`, async () => {
      const role = await fx.createRole(`tl_${how}_${fx.suffix}`, { password: `tl-${how}-initial-password` });
      const secret = `lifetime-${run}/${how}`;
      const initial = { username: role, password: `tl-${how}-initial-password` };
      expect((await root()('POST', `secret/data/${secret}`, { data: initial })).status).toBe(200);
      let token: string;
      if (how === 'expired') {
        token = await createToken({ ttl: '1s', renewable: false });
        await untilGone(token, 15_000);
      } else {
        token = await createToken({ ttl: '1h' });
        expect((await root()('POST', 'auth/token/revoke', { token })).status).toBe(204);
      }
      const account = `tl-${how}`;
      const { path, env } = config([{ name: account, target: 'main', role, provider: 'bao', secret }], token);
      const r = await fx.cli(['--config', path, 'rotate', account], env);
      const out = r.stdout + r.stderr;
      expect(r.code, out).not.toBe(0);
      expect(out).toMatch(
        new RegExp(
          `account ${account}: could not .* secret ${secret} in provider bao: .*the Vault token is expired or revoked.*\\(target main\\)`,
        ),
      );
      expect(out).not.toMatch(/capability/);
      expect(out).not.toContain(token);
      // Nothing changed: the old password still logs in, the secret is at its first version, no pending.
      expect(await fx.canLogin(role, initial.password)).toBe(true);
      const meta = (await root()('GET', `secret/metadata/${secret}`)).json.data as { current_version: number };
      expect(meta.current_version).toBe(1);
      expect((await root()('GET', `secret/data/pgrotate-pending/${secret}`)).status).toBe(404);
    });
  }

  it('closing the app cuts off a start-up token lookup still waiting on a Vault that never answers', async () => {
    // A server that accepts connections and never answers: the lookup would hold its connection
    // (and a library user's event loop) for the provider's timeout, 60 s here, without close().
    const held: Socket[] = [];
    const closed: Promise<void>[] = [];
    const silent: Server = createServer((s) => {
      // Read (and ignore) the request, so the client's hang-up is seen.
      s.resume();
      held.push(s);
      closed.push(new Promise<void>((resolve) => s.on('close', () => resolve())));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as { port: number }).port;
      const token = await createToken({ ttl: '1h', renewable: true });
      const { path, env } = config([], token, `http://127.0.0.1:${port}`, { timeout: '60s' });
      const redactor = new Redactor();
      const app = await createApp(loadConfigFile(path, env), {
        env,
        redactor,
        log: createLogger(redactor, { level: 'silent' }),
      });
      const until = Date.now() + 10_000;
      while (held.length === 0 && Date.now() < until) await sleep(20);
      expect(held.length, 'the provider looked its token up at start-up').toBe(1);
      const started = Date.now();
      await app.close();
      // The lookup's connection is closed by the client, long before the timeout would.
      await Promise.race([
        Promise.all(closed),
        sleep(20_000).then(() => {
          throw new Error('the start-up lookup still holds its connection 20 s after close()');
        }),
      ]);
      console.log(`start-up lookup cut off ${Date.now() - started} ms after close() (provider timeout 60 s)`);
      // And the CLI, which builds the same app, exits at once.
      const cliStarted = Date.now();
      const r = await fx.cliProcess(['--config', path, 'status', '--json'], env);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(Date.now() - cliStarted).toBeLessThan(30_000);
    } finally {
      for (const s of held) s.destroy();
      silent.close();
    }
  });
});
