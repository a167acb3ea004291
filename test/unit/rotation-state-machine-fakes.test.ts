import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FenceLostError } from '../../src/core/errors.js';
import { setPasswordVerifier } from '../../src/core/pg/role-admin.js';
import { scramVerifier } from '../../src/core/scram/scram-verifier.js';
import { describeProviderConformance } from '../conformance/provider-conformance.js';
import { FakeTargets } from './fakes/fake-targets.js';
import { InMemoryState } from './fakes/in-memory-fence.js';
import { InMemoryProvider } from './fakes/in-memory-provider.js';

// The fakes the state-machine tests stand on must behave like what they replace, or those tests
// prove nothing: the in-memory provider passes the same conformance suite as the real stores,
// the simulated catalogue accepts exactly the password whose verifier it was given, and the fake
// fence refuses writes the real one refuses.

describeProviderConformance('in-memory provider (unit-test fake)', async () => {
  const provider = new InMemoryProvider('mem');
  return {
    provider,
    secretName: () => `pg/${randomUUID()}`,
    consumerRead: async (secret) => provider.peek(secret).current,
    cleanup: async () => undefined,
  };
});

describe('fake target catalogue', () => {
  it('accepts a password only after its verifier was set through the real helper, and not once expired', async () => {
    const t = new FakeTargets('main');
    t.addRole('app');
    expect(await t.accepts('app', 'correct-horse-battery')).toBe(false);
    await t.withAdmin('main', 'acct', async (c) =>
      setPasswordVerifier(c, 'app', await scramVerifier('correct-horse-battery', 64)),
    );
    expect(await t.accepts('app', 'correct-horse-battery')).toBe(true);
    expect(await t.accepts('app', 'correct-horse-batterx')).toBe(false);
    t.roles.get('app')!.validUntil = new Date(Date.now() - 1000);
    expect(await t.accepts('app', 'correct-horse-battery')).toBe(false);
    expect(t.sql).toHaveLength(1);
  });

  it('rejects SQL it does not model, so a new engine statement cannot pass unnoticed', async () => {
    const t = new FakeTargets('main');
    await expect(t.withAdmin('main', 'acct', (c) => c.query('DROP ROLE app'))).rejects.toThrow(
      /unexpected SQL: DROP ROLE app/,
    );
  });
});

describe('in-memory fence', () => {
  it('refuses to advance a rotation that is no longer running, and any write after release', async () => {
    const state = new InMemoryState();
    const fence = await state.tryAcquireFence('acct');
    expect(fence).not.toBeNull();
    expect(await state.tryAcquireFence('acct')).toBeNull();
    const r = await fence!.create({
      id: randomUUID(),
      account: 'acct',
      target: 'main',
      strategy: 'single-user',
      targetRole: 'app',
      previousRole: null,
      reason: null,
      requestedBy: null,
      terminateSessions: false,
    });
    await fence!.fail(r, 'boom');
    await expect(fence!.advance(r.id, 'staged')).rejects.toBeInstanceOf(FenceLostError);
    await fence!.release();
    await expect(fence!.running()).rejects.toBeInstanceOf(FenceLostError);
    expect(await state.tryAcquireFence('acct')).not.toBeNull();
  });
});
