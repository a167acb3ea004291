import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vaultProviderSchema } from '../../providers/vault/vault-config.js';
import type { Logger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { PendingConflictError } from '../../src/core/provider/pending-conflict-error.js';
import type { SecretValue } from '../../src/core/provider/secret-provider.js';
import { VaultProvider, createVaultProvider } from '../../providers/vault/vault-provider.js';
import { sampleValue } from '../conformance/provider-conformance.js';
import { baoApi, type BaoServerInfo } from '../support/bao-server.js';
import { startCountingHttpProxy, type CountingHttpProxy } from '../support/counting-http-proxy.js';
import { service } from '../support/provided.js';

// Issue 16: how many OpenBao calls the vault provider makes per rotation, counted on the wire by
// a proxy in front of the real server (not from the code), and each path that falls back to
// reading the store: a rotation resumed by another provider instance, another writer between
// getCurrent and promote, a retried promote, a conflicting pending value, and the opt-in
// custom-metadata write. No password may appear in an error message or a log call on any path.

const bao = () => service<BaoServerInfo>('bao');
const root = () => baoApi(bao().address, bao().rootToken);

/** A logger that keeps every call's arguments as they were passed (no scrubbing), for the leak check. */
function rawLogger(lines: string[]): Logger {
  const record =
    (level: string) =>
    (...args: unknown[]) =>
      lines.push(`${level} ${JSON.stringify(args)}`);
  const log = {
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
    debug: record('debug'),
    child: () => log,
  };
  return log as unknown as Logger;
}

/** What the provider sent, as "METHOD path-inside-the-mount" (query kept). */
function calls(proxy: CountingHttpProxy): string[] {
  return proxy.calls.map((c) => c.replace(' /v1/secret/', ' '));
}

/** The HTTP status of each call, in the same order. */
function statuses(proxy: CountingHttpProxy): Array<number | undefined> {
  return proxy.timings.map((t) => t.status);
}

async function consumerRead(secret: string): Promise<(SecretValue & Record<string, unknown>) | null> {
  const r = await root()('GET', `secret/data/${secret}`);
  if (r.status === 404) return null;
  return (r.json.data as { data: SecretValue & Record<string, unknown> }).data;
}

async function currentVersion(secret: string): Promise<number> {
  const r = await root()('GET', `secret/metadata/${secret}`);
  return (r.json.data as { current_version: number }).current_version;
}

describe('vault provider: OpenBao calls per rotation and the fallback paths', () => {
  let proxy: CountingHttpProxy;
  const logs: string[] = [];
  const errors: string[] = [];
  const passwords: string[] = [];
  const run = randomUUID().slice(0, 8);
  let n = 0;
  const secretName = () => `calls-${run}/app-${n++}`;
  const made: VaultProvider[] = [];

  function provider(opts: { rotationMetadata?: boolean; token?: string } = {}): VaultProvider {
    const p = new VaultProvider({
      name: 'bao',
      address: proxy.address,
      mount: 'secret',
      auth: { method: 'token', token: opts.token ?? bao().rootToken },
      timeoutMs: 5000,
      rotationMetadata: opts.rotationMetadata,
      redactor: new Redactor(),
      log: rawLogger(logs),
    });
    made.push(p);
    return p;
  }
  const value = () => {
    const v = sampleValue();
    passwords.push(v.password);
    return v;
  };
  const failure = async (work: Promise<unknown>): Promise<Error> => {
    const err = await work.then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    errors.push(String((err as Error).message), String((err as Error).stack));
    return err as Error;
  };
  /**
   * One full rotation of `secret` through `p`, so the instance is warm (mount checked); like the
   * engine, the promote is handed the value the stage answered.
   */
  const rotate = async (p: VaultProvider, secret: string) => {
    const v = value();
    await p.getCurrent(secret);
    const staged = await p.stagePending(secret, v);
    await p.promotePending(secret, v.rotationId, staged);
    return v;
  };

  beforeAll(async () => {
    proxy = await startCountingHttpProxy(bao().address);
  });
  afterAll(async () => {
    for (const p of made) await p.close();
    await proxy?.close();
  });

  it('a warm rotation costs 4 calls: getCurrent, stage (one write) and promote (a write and the pending delete)', async () => {
    const p = provider();
    const s = secretName();
    const v1 = await rotate(p, s);
    proxy.reset();

    const v2 = value();
    expect((await p.getCurrent(s))?.password).toBe(v1.password);
    const afterGet = proxy.calls.length;
    const staged2 = await p.stagePending(s, v2);
    expect(staged2).toEqual(v2);
    await p.promotePending(s, v2.rotationId, staged2);
    const stageAndPromote = proxy.calls.length - afterGet;

    expect(calls(proxy)).toEqual([
      `GET data/${s}`,
      `POST data/pgrotate-pending/${s}`,
      `POST data/${s}`,
      `DELETE metadata/pgrotate-pending/${s}`,
    ]);
    expect(statuses(proxy)).toEqual([200, 200, 200, 204]);
    expect(stageAndPromote).toBeLessThanOrEqual(3);
    expect(proxy.calls.length).toBeLessThanOrEqual(4);
    // The same result as before: the new value is current, the old one previous, pending gone.
    expect(await consumerRead(s)).toEqual({ ...v2 });
    expect(await currentVersion(s)).toBe(2);
    expect((await root()('GET', `secret/metadata/pgrotate-pending/${s}`)).status).toBe(404);
    expect((await p.getPrevious(s))?.password).toBe(v1.password);

    // A first rotation of a secret that does not exist yet costs the same.
    const fresh = secretName();
    proxy.reset();
    await rotate(p, fresh);
    expect(calls(proxy)).toEqual([
      `GET data/${fresh}`,
      `POST data/pgrotate-pending/${fresh}`,
      `POST data/${fresh}`,
      `DELETE metadata/pgrotate-pending/${fresh}`,
    ]);
  });

  it('connections are kept alive: 20 sequential rotations use one TCP connection; a dropped one is replaced', async () => {
    const p = provider();
    const s = secretName();
    await rotate(p, s);
    proxy.reset();
    for (let i = 0; i < 20; i++) await rotate(p, s);
    expect(proxy.calls.length).toBe(20 * 4);
    // Issue 25.2: every call used to open its own connection (80 here).
    expect(proxy.connections).toBeLessThanOrEqual(2);
    // The server closes its idle connections (an idle timeout, a restart): the next calls open a new one.
    proxy.dropConnections();
    const v = await rotate(p, s);
    expect((await consumerRead(s))?.password).toBe(v.password);
    expect(proxy.connections).toBeLessThanOrEqual(3);
    expect(statuses(proxy).every((st) => st !== undefined && st < 300)).toBe(true);
  });

  it('a rotation resumed by a new provider instance (a new process) reads the store before it promotes', async () => {
    const s = secretName();
    const first = provider();
    const v1 = await rotate(first, s);
    const v2 = value();
    await first.getCurrent(s);
    await first.stagePending(s, v2);
    // "Crash": another instance, which saw and wrote nothing, promotes.
    const second = provider();
    await second.getCurrent(s); // warms its mount check
    proxy.reset();
    await second.promotePending(s, v2.rotationId);
    expect(calls(proxy)).toEqual([
      `GET data/pgrotate-pending/${s}`,
      `GET data/${s}`,
      `POST data/${s}`,
      `DELETE metadata/pgrotate-pending/${s}`,
    ]);
    expect((await consumerRead(s))?.password).toBe(v2.password);
    expect((await second.getPrevious(s))?.password).toBe(v1.password);
    // Resuming a stage in a new instance keeps the value already staged (a write refused, one read).
    const v3 = value();
    await first.stagePending(s, v3);
    proxy.reset();
    const again = await second.stagePending(s, { ...v3, password: `retry-${randomUUID()}` });
    expect(again.password).toBe(v3.password);
    expect(calls(proxy)).toEqual([`POST data/pgrotate-pending/${s}`, `GET data/pgrotate-pending/${s}`]);
    expect(statuses(proxy)[0]).toBe(400);
    // Promoting a rotation nobody staged is refused after reading, naming the secret.
    await second.discardPending(s, v3.rotationId);
    const err = await failure(second.promotePending(s, v3.rotationId));
    expect(err.message).toMatch(new RegExp(`secret ${s} has no pending value of rotation ${v3.rotationId}`));
  });

  it('another writer between getCurrent and promote: check-and-set refuses the write, the store is read, and a second writer is the same error as before', async () => {
    const s = secretName();
    const p = provider();
    await rotate(p, s);
    const v2 = value();
    await p.getCurrent(s);
    const staged2 = await p.stagePending(s, v2);
    // A person writes the secret after the rotation read it (version 1 -> 2).
    const manual = `manual-${randomUUID()}`;
    expect((await root()('POST', `secret/data/${s}`, { data: { username: 'someone', password: manual } })).status).toBe(
      200,
    );
    proxy.reset();
    await p.promotePending(s, v2.rotationId, staged2);
    // Refused with cas 1, then today's reads and a write on top of the version read (2).
    expect(calls(proxy)).toEqual([
      `POST data/${s}`,
      `GET data/pgrotate-pending/${s}`,
      `GET data/${s}`,
      `POST data/${s}`,
      `DELETE metadata/pgrotate-pending/${s}`,
    ]);
    expect(statuses(proxy)).toEqual([400, 200, 200, 200, 204]);
    expect((await consumerRead(s))?.password).toBe(v2.password);
    expect(await currentVersion(s)).toBe(3);

    // A writer that lands before every write of the promote: never overwritten, the pending value
    // stays for the resumed rotation, and the error is the one the provider always gave.
    const v3 = value();
    await p.getCurrent(s);
    const staged3 = await p.stagePending(s, v3);
    let other = 0;
    proxy.before = async (method, path) => {
      if (method === 'POST' && path === `/v1/secret/data/${s}`) {
        other++;
        await root()('POST', `secret/data/${s}`, {
          data: { username: 'someone-else', password: `${manual}-${other}` },
        });
      }
    };
    try {
      const err = await failure(p.promotePending(s, v3.rotationId, staged3));
      expect(err.message).toMatch(new RegExp(`secret ${s} was changed by another writer.*expected version 4`));
    } finally {
      proxy.before = null;
    }
    expect((await consumerRead(s))?.username).toBe('someone-else');
    expect((await p.getPending(s))?.password).toBe(v3.password);
    // Run again (the resumed rotation): it reads and promotes.
    await p.promotePending(s, v3.rotationId);
    expect((await consumerRead(s))?.password).toBe(v3.password);
  });

  it('an already promoted rotation: a retried promote only removes a leftover pending value, and never writes current again', async () => {
    const s = secretName();
    const p = provider();
    await rotate(p, s);
    const v2 = value();
    await p.getCurrent(s);
    const staged2b = await p.stagePending(s, v2);
    // The promote's write lands, then its pending delete fails (as if the process died there).
    proxy.before = async (method) => {
      if (method === 'DELETE') throw new Error('cut off');
    };
    try {
      await failure(p.promotePending(s, v2.rotationId, staged2b));
    } finally {
      proxy.before = null;
    }
    expect((await consumerRead(s))?.password).toBe(v2.password);
    expect((await p.getPending(s))?.password).toBe(v2.password);
    const version = await currentVersion(s);
    for (const retry of [p, provider()]) {
      if (retry !== p) await retry.getCurrent(s);
      proxy.reset();
      await retry.promotePending(s, v2.rotationId);
      expect(calls(proxy).filter((c) => c.startsWith('POST'))).toEqual([]);
    }
    expect(await currentVersion(s)).toBe(version);
    expect((await root()('GET', `secret/metadata/pgrotate-pending/${s}`)).status).toBe(404);
    // The same instance promoting twice in a row is idempotent as well.
    const v3 = value();
    await p.getCurrent(s);
    const staged3b = await p.stagePending(s, v3);
    await p.promotePending(s, v3.rotationId, staged3b);
    proxy.reset();
    await p.promotePending(s, v3.rotationId, staged3b);
    expect(calls(proxy)).toEqual([`GET data/pgrotate-pending/${s}`, `GET data/${s}`]);
  });

  it("staging with another rotation's pending value present throws PendingConflictError carrying that value", async () => {
    const s = secretName();
    const p = provider();
    await rotate(p, s);
    const mine = value();
    await p.stagePending(s, mine);
    for (const q of [p, provider()]) {
      const other = value();
      await q.getCurrent(s);
      proxy.reset();
      const err = await failure(q.stagePending(s, other));
      expect(err).toBeInstanceOf(PendingConflictError);
      expect(err.message).toMatch(new RegExp(`secret ${s} already has a pending value of rotation ${mine.rotationId}`));
      expect((err as PendingConflictError).existing).toMatchObject({
        password: mine.password,
        rotationId: mine.rotationId,
      });
      expect(calls(proxy)).toEqual([`POST data/pgrotate-pending/${s}`, `GET data/pgrotate-pending/${s}`]);
      // Nothing was changed: the first rotation's value is still the pending one.
      expect((await p.getPending(s))?.password).toBe(mine.password);
      // The refused rotation cannot promote the other's value.
      await failure(q.promotePending(s, other.rotationId));
    }
    await p.promotePending(s, mine.rotationId, mine);
    expect((await consumerRead(s))?.password).toBe(mine.password);
    // A pending path whose versions were deleted by hand (not destroyed) is written on top of.
    const v = value();
    await p.stagePending(s, v);
    expect((await root()('DELETE', `secret/data/pgrotate-pending/${s}`)).status).toBe(204);
    const after = value();
    expect((await p.stagePending(s, after)).password).toBe(after.password);
    expect((await p.getPending(s))?.password).toBe(after.password);
  });

  it('two instances (two processes) promoting the same rotation at once: one new version, never a lost or foreign value', async () => {
    for (let round = 0; round < 4; round++) {
      const s = secretName();
      const a = provider();
      const b = provider();
      await rotate(a, s);
      await b.getCurrent(s);
      const v = value();
      await a.getCurrent(s);
      const staged = await a.stagePending(s, v);
      const before = await currentVersion(s);
      // a promotes what it staged, b (a resumed copy of the rotation) from the store.
      const outcomes = await Promise.allSettled([
        a.promotePending(s, v.rotationId, staged),
        b.promotePending(s, v.rotationId),
      ]);
      for (const o of outcomes) {
        if (o.status === 'rejected') {
          errors.push(String((o.reason as Error).message));
          // The loser of a check-and-set race gives the error it always gave; nothing was overwritten.
          expect((o.reason as Error).message).toMatch(new RegExp(`secret ${s} was changed by another writer`));
        }
      }
      expect(outcomes.some((o) => o.status === 'fulfilled')).toBe(true);
      // A rerun (what the engine does after an error) finishes in either instance.
      await b.promotePending(s, v.rotationId);
      await a.promotePending(s, v.rotationId);
      expect(await currentVersion(s)).toBe(before + 1);
      expect((await consumerRead(s))?.password).toBe(v.password);
      expect((await root()('GET', `secret/metadata/pgrotate-pending/${s}`)).status).toBe(404);
    }
  });

  it('a stage whose write landed but whose answer was lost: the retry finds its own value and promote still needs no read', async () => {
    const s = secretName();
    const p = provider();
    await rotate(p, s);
    const v = value();
    await p.getCurrent(s);
    // As if an earlier attempt's write reached OpenBao and its answer did not reach pgrotate.
    expect(
      (await root()('POST', `secret/data/pgrotate-pending/${s}`, { options: { cas: 0 }, data: { ...v } })).status,
    ).toBe(200);
    proxy.reset();
    const staged = await p.stagePending(s, { ...v, password: `retry-${randomUUID()}` });
    expect(staged.password).toBe(v.password);
    await p.promotePending(s, v.rotationId, staged);
    expect(calls(proxy)).toEqual([
      `POST data/pgrotate-pending/${s}`,
      `GET data/pgrotate-pending/${s}`,
      `POST data/${s}`,
      `DELETE metadata/pgrotate-pending/${s}`,
    ]);
    expect(await consumerRead(s)).toEqual({ ...v });
  });

  it('rotation metadata: off by default (no PATCH), on with rotationMetadata (a 5th call), and a refused PATCH is only a warning', async () => {
    const deps = { redactor: new Redactor(), log: rawLogger(logs) };
    const config = (extra: Record<string, unknown>) =>
      vaultProviderSchema.parse({ type: 'vault', address: proxy.address, token: bao().rootToken, ...extra });
    expect(config({}).rotationMetadata).toBe(false);

    const off = createVaultProvider('bao', config({}), deps);
    made.push(off);
    const sOff = secretName();
    await rotate(off, sOff);
    proxy.reset();
    await rotate(off, sOff);
    expect(calls(proxy).some((c) => c.startsWith('PATCH'))).toBe(false);
    expect(proxy.calls.length).toBe(4);
    const mdOff = (await root()('GET', `secret/metadata/${sOff}`)).json.data as {
      custom_metadata: Record<string, string> | null;
    };
    expect(mdOff.custom_metadata ?? {}).not.toHaveProperty('pgrotate_rotation_id');

    const on = createVaultProvider('bao', config({ rotationMetadata: true }), deps);
    made.push(on);
    const sOn = secretName();
    await rotate(on, sOn);
    proxy.reset();
    const v = await rotate(on, sOn);
    expect(calls(proxy)).toEqual([
      `GET data/${sOn}`,
      `POST data/pgrotate-pending/${sOn}`,
      `POST data/${sOn}`,
      `PATCH metadata/${sOn}`,
      `DELETE metadata/pgrotate-pending/${sOn}`,
    ]);
    const mdOn = (await root()('GET', `secret/metadata/${sOn}`)).json.data as {
      custom_metadata: Record<string, string>;
    };
    expect(mdOn.custom_metadata).toMatchObject({
      pgrotate_rotation_id: v.rotationId,
      pgrotate_rotated_at: v.rotatedAt,
    });

    // A policy without "patch" on the metadata: the rotation still completes, with a warning.
    const policy = `calls-${run}`;
    await root()('PUT', `sys/policies/acl/${policy}`, {
      policy: `path "secret/data/calls-${run}/*" { capabilities = ["create", "update", "read"] }
path "secret/data/pgrotate-pending/calls-${run}/*" { capabilities = ["create", "update", "read"] }
path "secret/metadata/pgrotate-pending/calls-${run}/*" { capabilities = ["delete"] }`,
    });
    const tok = await root()('POST', 'auth/token/create', { policies: [policy], ttl: '10m' });
    const limited = provider({
      rotationMetadata: true,
      token: (tok.json.auth as { client_token: string }).client_token,
    });
    const before = logs.length;
    const sLimited = secretName();
    const w = await rotate(limited, sLimited);
    expect((await consumerRead(sLimited))?.password).toBe(w.password);
    const warned = logs.slice(before).filter((l) => l.includes('could not record rotation facts'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/needs the \\"patch\\" capability/);
  });

  it('no password appears in any error message or log call of these paths', () => {
    expect(passwords.length).toBeGreaterThan(20);
    expect(errors.length).toBeGreaterThan(5);
    const text = [...errors, ...logs].join('\n');
    expect(passwords.filter((pw) => text.includes(pw))).toEqual([]);
  });
});
