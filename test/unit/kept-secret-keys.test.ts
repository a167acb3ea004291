import { describe, expect, it } from 'vitest';
import { SecretFormatError } from '../../src/core/errors.js';
import {
  OWNED_SECRET_KEYS,
  parseSecretObject,
  parseSecretText,
  secretPayload,
  type SecretValue,
} from '../../src/core/provider/secret-provider.js';
import { keptSecretKeys, keysHoldingPassword } from '../../src/core/rotation/kept-secret-keys.js';
import { makeHarness, type Harness } from './fakes/engine-harness.js';
import { credential, everythingRecorded, livePassword } from './fakes/scenario.js';

// The keys of a secret pgrotate does not own are kept: parsed apart from the owned fields,
// written back after them, carried by every rotation (both strategies, resumed ones too), and
// refused before anything changes when one holds the current password. Over the fakes; the
// providers' side is in the conformance suite and the real rotations in kept-secret-keys-rotation.

const where = { provider: 'bao', secret: 'pg/billing' };
const RDS = { dbInstanceIdentifier: 'db-1', dbClusterIdentifier: 'cl-1', proxy: 'px', masterarn: 'arn:aws:x' };

describe('secret format: kept keys', () => {
  it('parsing splits the owned fields from the kept keys; a value without any has no extra', () => {
    const v = parseSecretText(
      JSON.stringify({ username: 'u', password: 'p', port: 5432, ...RDS, pool_size: 10, nested: { a: [1] } }),
      where,
    );
    expect(v).toEqual({
      username: 'u',
      password: 'p',
      port: 5432,
      extra: { ...RDS, pool_size: 10, nested: { a: [1] } },
    });
    expect(Object.keys(parseSecretObject({ username: 'u', password: 'p' }, where))).toEqual(['username', 'password']);
  });

  it('the payload has the owned fields in their order, then the kept keys in stored order, never over an owned field', () => {
    const v: SecretValue = {
      rotationId: 'r1',
      password: 'new',
      username: 'u',
      extra: { zeta: 1, password: 'old', alpha: 2, rotationId: 'forged' },
    };
    const out = secretPayload(v);
    expect(Object.keys(out)).toEqual(['username', 'password', 'rotationId', 'zeta', 'alpha']);
    expect(out).toMatchObject({ password: 'new', rotationId: 'r1' });
  });

  it('a stored key named "__proto__" stays a plain key and round-trips', () => {
    const text = '{"username":"u","password":"p","__proto__":{"polluted":true}}';
    const v = parseSecretText(text, where);
    expect(Object.getPrototypeOf(v.extra)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const out = JSON.stringify(secretPayload(v));
    expect(JSON.parse(out)).toEqual(JSON.parse(text));
    expect(out).toContain('"__proto__":{"polluted":true}');
  });

  it('the owned keys are the documented secret format', () => {
    expect([...OWNED_SECRET_KEYS]).toEqual([
      'username',
      'password',
      'host',
      'port',
      'dbname',
      'engine',
      'rotatedAt',
      'rotationId',
      'rotatesAt',
      'previousValidUntil',
    ]);
  });
});

describe('kept keys holding the current password', () => {
  const pw = 'Xy7pQ2rT9vLm3Kd8';
  it('finds it as text, URL-encoded, nested, and in a key name; a short password is not searched', () => {
    const odd = 'p@ss/w0rd:long!';
    expect(keysHoldingPassword({ DATABASE_URL: `postgres://u:${pw}@h/db`, pool: 5 }, pw)).toEqual(['DATABASE_URL']);
    expect(keysHoldingPassword({ url: `postgres://u:${encodeURIComponent(odd)}@h/db` }, odd)).toEqual(['url']);
    expect(keysHoldingPassword({ deep: { list: [{ pgpass: `h:5432:*:u:${pw}` }] } }, pw)).toEqual(['deep']);
    expect(keysHoldingPassword({ [`k-${pw}`]: 1, other: 'x' }, pw)).toEqual([`k-${pw}`]);
    expect(keysHoldingPassword({ owner_team: 'apps-team' }, 'app')).toEqual([]);
  });

  it('is refused with an error naming account, secret, provider and key, never the password', () => {
    const current: SecretValue = { username: 'u', password: pw, extra: { DATABASE_URL: `x:${pw}`, [`n-${pw}`]: 1 } };
    let err: unknown;
    try {
      keptSecretKeys(current, { account: 'billing', target: 'main', provider: 'bao', secret: 'pg/billing' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SecretFormatError);
    const e = err as SecretFormatError;
    expect(e.message).toMatch(
      /^account billing: secret pg\/billing in provider bao has key\(s\) "DATABASE_URL", \(a key whose name holds the password\) holding the current password.*Nothing was changed/,
    );
    expect(e.message).not.toContain(pw);
    expect(e).toMatchObject({ account: 'billing', target: 'main', secret: 'pg/billing', permanent: true });
    expect(
      keptSecretKeys({ username: 'u', password: pw }, { account: 'a', target: 't', provider: 'p', secret: 's' }),
    ).toBeUndefined();
    expect(keptSecretKeys(null, { account: 'a', target: 't', provider: 'p', secret: 's' })).toBeUndefined();
  });
});

function singleUser(): Harness {
  const h = makeHarness({ account: { name: 'billing', role: 'billing_app' } });
  h.targets.addRole('billing_app');
  return h;
}

function alternating(): Harness {
  const h = makeHarness({
    account: { name: 'reports', strategy: 'alternating', roles: ['reports_a', 'reports_b'], gracePeriod: '1h' },
  });
  h.targets.addRole('reports_a');
  h.targets.addRole('reports_b');
  return h;
}

describe('rotation engine: kept keys', () => {
  it('single-user: the first and the second rotation keep every key pgrotate does not own', async () => {
    const h = singleUser();
    const old = { ...credential('billing_app', undefined), extra: { ...RDS, pool_size: 20 } };
    await livePassword(h, 'billing_app', old.password);
    h.provider.seed('pg/app', { current: old });
    for (let i = 0; i < 2; i++) {
      const res = await h.rotate();
      expect(res.outcome, res.error?.message).toBe('succeeded');
      const current = h.provider.peek('pg/app').current;
      expect(current?.rotationId).toBe(res.rotationId);
      expect(current?.extra).toEqual({ ...RDS, pool_size: 20 });
    }
    expect(h.provider.peek('pg/app').previous?.extra).toEqual({ ...RDS, pool_size: 20 });
  });

  it('alternating: the other role takes over the kept keys', async () => {
    const h = alternating();
    const old = { ...credential('reports_a'), extra: { sslmode: 'require', owner_team: 'bi' } };
    await livePassword(h, 'reports_a', old.password);
    h.provider.seed('pg/app', { current: old });
    const res = await h.rotate();
    expect(res.outcome, res.error?.message).toBe('succeeded');
    expect(h.provider.peek('pg/app').current).toMatchObject({
      username: 'reports_b',
      extra: { sslmode: 'require', owner_team: 'bi' },
    });
  });

  it('a rotation resumed before its stage reads the current value for the keys it keeps', async () => {
    const h = singleUser();
    const old = { ...credential('billing_app'), extra: { ...RDS } };
    await livePassword(h, 'billing_app', old.password);
    h.provider.seed('pg/app', { current: old });
    const record = h.state.seedRunning({ account: 'billing', step: 'created', targetRole: 'billing_app' });
    const res = await h.rotate();
    expect(res).toMatchObject({ outcome: 'succeeded', resumed: true, rotationId: record.id });
    expect(h.provider.ops()).toEqual(['getCurrent', 'stagePending', 'promotePending']);
    expect(h.provider.peek('pg/app').current?.extra).toEqual(RDS);
  });

  it('a rotation whose staged value vanished stages again with the kept keys, without another read', async () => {
    const h = singleUser();
    const old = { ...credential('billing_app'), extra: { ...RDS } };
    await livePassword(h, 'billing_app', old.password);
    h.provider.seed('pg/app', { current: old });
    h.state.seedRunning({ account: 'billing', step: 'staged', targetRole: 'billing_app' });
    const res = await h.rotate();
    expect(res.outcome, res.error?.message).toBe('succeeded');
    expect(h.provider.ops()).toEqual(['getPending', 'getCurrent', 'stagePending', 'promotePending']);
    expect(h.provider.peek('pg/app').current?.extra).toEqual(RDS);
  });

  for (const resumed of [false, true]) {
    it(`a kept key holding the current password is refused before anything changes${resumed ? ' (resumed rotation)' : ''}`, async () => {
      const h = singleUser();
      const old = credential('billing_app');
      old.extra = { DATABASE_URL: `postgres://billing_app:${old.password}@db/app`, pool_size: 5 };
      await livePassword(h, 'billing_app', old.password);
      h.provider.seed('pg/app', { current: old });
      if (resumed) h.state.seedRunning({ account: 'billing', step: 'created', targetRole: 'billing_app' });
      const res = await h.rotate();
      expect(res.outcome).toBe('failed');
      expect(res.error).toBeInstanceOf(SecretFormatError);
      expect(res.error?.message).toMatch(/account billing: secret pg\/app in provider mem has key\(s\) "DATABASE_URL"/);
      expect(res.error?.message).not.toContain(old.password);
      expect(h.provider.ops()).toEqual(['getCurrent']);
      expect(h.targets.statements().filter((q) => q.startsWith('ALTER ROLE'))).toEqual([]);
      expect(h.provider.peek('pg/app')).toEqual({ current: old, pending: null, previous: null });
      expect(await h.targets.accepts('billing_app', old.password)).toBe(true);
      expect(everythingRecorded(h)).not.toContain(old.password);
    });
  }
});
