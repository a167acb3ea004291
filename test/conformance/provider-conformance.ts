import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PendingConflictError } from '../../src/core/provider/pending-conflict-error.js';
import type { RotatedSecretValue, SecretProvider, SecretValue } from '../../src/core/provider/secret-provider.js';

// The provider conformance suite: every secret store passes the same behavioural checks the
// rotation engine relies on. A provider's test file calls `describeProviderConformance` with a
// factory that connects to the real service.

export interface ConformanceHarness {
  provider: SecretProvider;
  /** A fresh secret name (path) for one test. */
  secretName(): string;
  /** Read the secret exactly the way applications do (the store's normal location). */
  consumerRead(secret: string): Promise<SecretValue | null>;
  /**
   * The kept keys to test with, when the store holds only strings beside the credential (a
   * Kubernetes Secret's data): the same keys as KEPT, as that store can hold them. Default KEPT.
   */
  kept?: Record<string, unknown>;
  /** Store raw text as the current value, as a person might have (for format errors). */
  seedRaw?(secret: string, text: string): Promise<void>;
  cleanup(): Promise<void>;
}

let lastRotatedAt = 0;

/**
 * A complete value as the engine writes it. Each one's rotatedAt is later than the one made before, as a
 * later rotation's is (rotations of an account are fenced, one after another): values made in the
 * same millisecond would tie, and a store that orders versions of one second by rotatedAt
 * (Azure's timestamps have one-second resolution) could not tell them apart.
 */
export function sampleValue(overrides: Partial<RotatedSecretValue> = {}): RotatedSecretValue {
  lastRotatedAt = Math.max(Date.now(), lastRotatedAt + 1);
  return {
    username: 'app_user',
    password: `pw-${randomUUID()}`,
    host: 'db.example.internal',
    port: 5432,
    dbname: 'app',
    engine: 'postgres',
    rotatedAt: new Date(lastRotatedAt).toISOString(),
    rotationId: randomUUID(),
    ...overrides,
  };
}

/** Register the conformance tests for one provider. */
export function describeProviderConformance(label: string, makeHarness: () => Promise<ConformanceHarness>): void {
  describe(`provider conformance: ${label}`, () => {
    let h: ConformanceHarness;
    beforeAll(async () => {
      h = await makeHarness();
    });
    afterAll(async () => {
      await h?.cleanup();
    });

    it('a secret that does not exist reads as null', async () => {
      const s = h.secretName();
      expect(await h.provider.getCurrent(s)).toBeNull();
      expect(await h.provider.getPending(s)).toBeNull();
      expect(await h.provider.getPrevious(s)).toBeNull();
    });

    it('stage is idempotent per rotation id: a retried stage keeps the first value', async () => {
      const s = h.secretName();
      const first = sampleValue();
      const again = { ...first, password: `other-${randomUUID()}` };
      expect((await h.provider.stagePending(s, first)).password).toBe(first.password);
      expect((await h.provider.stagePending(s, again)).password).toBe(first.password);
      expect((await h.provider.getPending(s))?.password).toBe(first.password);
    });

    it('pending is invisible to readers of current, for a new and for an existing secret', async () => {
      const s = h.secretName();
      const v1 = sampleValue();
      await h.provider.stagePending(s, v1);
      expect(await h.consumerRead(s)).toBeNull();
      expect(await h.provider.getCurrent(s)).toBeNull();
      await h.provider.promotePending(s, v1.rotationId);
      const v2 = sampleValue();
      await h.provider.stagePending(s, v2);
      expect((await h.consumerRead(s))?.password).toBe(v1.password);
      expect((await h.provider.getCurrent(s))?.password).toBe(v1.password);
    });

    it('promote makes pending current, clears pending, and is idempotent', async () => {
      const s = h.secretName();
      const v = sampleValue();
      await h.provider.stagePending(s, v);
      await h.provider.promotePending(s, v.rotationId);
      await h.provider.promotePending(s, v.rotationId);
      const current = await h.provider.getCurrent(s);
      expect(current).toMatchObject({
        username: v.username,
        password: v.password,
        rotationId: v.rotationId,
        engine: 'postgres',
        port: 5432,
        dbname: 'app',
      });
      expect((await h.consumerRead(s))?.password).toBe(v.password);
      expect(await h.provider.getPending(s)).toBeNull();
    });

    it('stores exactly the documented secret fields (schedule metadata stays out of the secret)', async () => {
      const s = h.secretName();
      const v = { ...sampleValue(), nextDueAt: new Date(Date.now() + 86_400_000).toISOString() };
      await h.provider.stagePending(s, v);
      await h.provider.promotePending(s, v.rotationId);
      const read = (await h.consumerRead(s)) as Record<string, unknown> | null;
      expect(Object.keys(read ?? {}).sort()).toEqual([
        'dbname',
        'engine',
        'host',
        'password',
        'port',
        'rotatedAt',
        'rotationId',
        'username',
      ]);
    });

    it('the superseded current stays readable as previous', async () => {
      const s = h.secretName();
      const v1 = sampleValue();
      const v2 = sampleValue();
      await h.provider.stagePending(s, v1);
      await h.provider.promotePending(s, v1.rotationId);
      await h.provider.stagePending(s, v2);
      await h.provider.promotePending(s, v2.rotationId);
      expect((await h.provider.getCurrent(s))?.password).toBe(v2.password);
      expect((await h.provider.getPrevious(s))?.password).toBe(v1.password);
    });

    it('a pending value of another rotation is refused, and discard only removes its own', async () => {
      const s = h.secretName();
      const mine = sampleValue();
      const other = sampleValue();
      await h.provider.stagePending(s, mine);
      await expect(h.provider.stagePending(s, other)).rejects.toThrow(/pending/i);
      await h.provider.discardPending(s, other.rotationId);
      expect((await h.provider.getPending(s))?.rotationId).toBe(mine.rotationId);
      await h.provider.discardPending(s, mine.rotationId);
      expect(await h.provider.getPending(s)).toBeNull();
      await h.provider.stagePending(s, other);
      expect((await h.provider.getPending(s))?.rotationId).toBe(other.rotationId);
    });

    it("staging with another rotation's pending value present throws PendingConflictError carrying that value", async () => {
      const s = h.secretName();
      const mine = sampleValue();
      const other = sampleValue();
      await h.provider.stagePending(s, mine);
      const err = await h.provider.stagePending(s, other).then(
        () => null,
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(PendingConflictError);
      const conflict = err as PendingConflictError;
      expect(conflict.existing).toMatchObject({
        username: mine.username,
        password: mine.password,
        rotationId: mine.rotationId,
      });
      expect(conflict.message).toContain(s);
      expect(conflict.message).toContain(mine.rotationId);
      expect(conflict.message).not.toContain(mine.password);
      expect(conflict.message).not.toContain(other.password);
      // Nothing changed: the first rotation's value is still the pending one.
      expect((await h.provider.getPending(s))?.password).toBe(mine.password);
    });

    it('promoting a rotation that was never staged is an error naming the secret', async () => {
      const s = h.secretName();
      await expect(h.provider.promotePending(s, randomUUID())).rejects.toThrow(s);
    });

    it('concurrent rotations of different secrets do not clobber each other', async () => {
      const secrets = Array.from({ length: 6 }, () => h.secretName());
      const values = new Map(secrets.map((s) => [s, sampleValue({ username: `u_${s.length}` })]));
      await Promise.all(
        secrets.map(async (s) => {
          const v = values.get(s) as RotatedSecretValue;
          await h.provider.stagePending(s, v);
          await h.provider.promotePending(s, v.rotationId);
        }),
      );
      for (const s of secrets) {
        expect((await h.provider.getCurrent(s))?.password).toBe(values.get(s)?.password);
        expect((await h.consumerRead(s))?.password).toBe(values.get(s)?.password);
      }
    });

    it('keeps the keys pgrotate does not own through stage, promote, previous and the next rotation; owned keys are its own', async () => {
      const s = h.secretName();
      const KEPT = h.kept ?? ALL_KINDS_KEPT;
      const oldPassword = `old-${randomUUID()}`;
      const fields = {
        username: 'app_user',
        password: oldPassword,
        host: 'old-host.example.internal',
        port: 5432,
        engine: 'postgres' as const,
      };
      if (h.seedRaw) {
        // As RDS or a person wrote it: no rotation facts, keys pgrotate has never seen.
        await h.seedRaw(s, JSON.stringify({ ...fields, ...KEPT }));
      } else {
        const first = sampleValue({ ...fields, extra: KEPT });
        await h.provider.stagePending(s, first);
        await h.provider.promotePending(s, first.rotationId);
      }
      const current = await h.provider.getCurrent(s);
      expect(current?.extra).toEqual(KEPT);
      const before = stored(await h.consumerRead(s));
      expect(before).toMatchObject({ ...KEPT, password: oldPassword });

      // Stage: the pending value carries the kept keys; consumers still read the old value.
      const v1 = sampleValue({ extra: current?.extra as Record<string, unknown> });
      expect((await h.provider.stagePending(s, v1)).extra).toEqual(KEPT);
      expect((await h.provider.getPending(s))?.extra).toEqual(KEPT);
      expect(stored(await h.consumerRead(s))).toEqual(before);

      // Promote, read back from the store (a resumed rotation holds no staged value).
      await h.provider.promotePending(s, v1.rotationId);
      const after1 = stored(await h.consumerRead(s));
      expect(after1).toEqual({ ...secretFieldsOf(v1), ...KEPT });
      expect(JSON.stringify(after1)).not.toContain(oldPassword);
      const previous = await h.provider.getPrevious(s);
      expect(previous?.password).toBe(oldPassword);
      expect(previous?.extra).toEqual(KEPT);

      // A second rotation, promoted with the value it staged (the warm path); the kept keys may
      // not replace an owned field even when they name one.
      const v2 = sampleValue({
        extra: { ...((await h.provider.getCurrent(s))?.extra ?? {}), password: oldPassword, username: 'intruder' },
      });
      const staged2 = await h.provider.stagePending(s, v2);
      await h.provider.promotePending(s, v2.rotationId, staged2);
      const after2 = stored(await h.consumerRead(s));
      expect(after2).toEqual({ ...secretFieldsOf(v2), ...KEPT });
      expect(JSON.stringify(after2)).not.toContain(oldPassword);
      expect((await h.provider.getCurrent(s))?.extra).toEqual(KEPT);
      expect((await h.provider.getPrevious(s))?.extra).toEqual(KEPT);
    });

    it('a current value that is not JSON, or lacks username, is a clear error naming the secret', async () => {
      if (!h.seedRaw) return expect(h.seedRaw).toBeUndefined();
      const notJson = h.secretName();
      await h.seedRaw(notJson, 'this is not json');
      await expect(h.provider.getCurrent(notJson)).rejects.toThrow(new RegExp(`${escape(notJson)}.*not JSON`));
      const noUser = h.secretName();
      await h.seedRaw(noUser, JSON.stringify({ password: 'x-secret-value' }));
      const err = await h.provider.getCurrent(noUser).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(new RegExp(`${escape(noUser)}.*username`));
      expect(err?.message).not.toContain('x-secret-value');
    });
  });
}

/** Keys of a real RDS-created secret and of a team's Vault secret, with every JSON value kind. */
export const ALL_KINDS_KEPT: Record<string, unknown> = {
  dbInstanceIdentifier: 'billing-db-1',
  dbClusterIdentifier: 'billing-cluster',
  proxy: 'billing-proxy.proxy-abc.us-east-1.rds.amazonaws.com',
  masterarn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1a2b3c',
  pool_size: 20,
  sslmode: 'verify-full',
  owner_team: 'payments',
  readOnly: false,
  replicas: ['r1', 'r2'],
  labels: { tier: 'gold', cost: { centre: 42 } },
  retired: null,
};

/** The owned fields of a value as the engine writes them (schedule metadata excluded). */
function secretFieldsOf(v: RotatedSecretValue): Record<string, unknown> {
  const { username, password, host, port, dbname, engine, rotatedAt, rotationId } = v;
  return { username, password, host, port, dbname, engine, rotatedAt, rotationId };
}

/** What a consumer read holds as stored JSON: raw reads as they are, parsed ones with their kept keys flattened. */
function stored(v: SecretValue | null): Record<string, unknown> | null {
  if (!v) return null;
  const { extra, ...fields } = v;
  return { ...fields, ...(extra ?? {}) };
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
