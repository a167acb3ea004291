import { describe, expect, it } from 'vitest';
import { Redactor } from '../../src/core/logging/redactor.js';

// Issue 13, defect 3: secrets a rotation adds are forgotten when its redaction scope ends;
// shared values stay until the last scope holding them ends; process-wide ones stay for good.

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('redaction scopes', () => {
  it('a secret added in a scope is scrubbed while the scope runs (also after awaits) and forgotten after', async () => {
    const r = new Redactor();
    const secret = 'RotationPw-1234567890abcdef';
    await r.scoped(async () => {
      await tick();
      r.add(secret);
      await tick();
      expect(r.scrub(`x ${secret} y`)).toBe('x [REDACTED] y');
      expect(r.has(secret)).toBe(true);
    });
    expect(r.has(secret)).toBe(false);
    expect(r.size).toBe(0);
    expect(r.scrub(secret)).toBe(secret);
  });

  it('outside any scope, and through keep(), secrets stay for the life of the process', async () => {
    const r = new Redactor();
    r.add('configured-env-value-1');
    await r.scoped(async () => {
      r.keep('admin-credential-value-2');
      r.add('configured-env-value-1');
    });
    expect(r.has('configured-env-value-1')).toBe(true);
    expect(r.has('admin-credential-value-2')).toBe(true);
    expect(r.scrub('configured-env-value-1')).toBe('[REDACTED]');
  });

  it('two concurrent rotations sharing a value keep it until both are done', async () => {
    const r = new Redactor();
    const shared = 'SharedPendingValue-987654';
    let releaseFirst!: () => void;
    const firstMayEnd = new Promise<void>((res) => (releaseFirst = res));
    let secondAdded!: () => void;
    const secondHasIt = new Promise<void>((res) => (secondAdded = res));
    const first = r.scoped(async () => {
      r.add(shared);
      r.add('only-in-first-scope-1');
      await firstMayEnd;
    });
    const second = r.scoped(async () => {
      r.add(shared);
      secondAdded();
      await first;
      // The first scope is over; this one still holds the shared value.
      expect(r.has(shared)).toBe(true);
      expect(r.has('only-in-first-scope-1')).toBe(false);
    });
    await secondHasIt;
    releaseFirst();
    await second;
    expect(r.size).toBe(0);
  });

  it('a nested scope hands its secrets to the outer one, which forgets them at its end', async () => {
    const r = new Redactor();
    await r.scoped(async () => {
      await r.scoped(async () => r.add('inner-rotation-secret-1'));
      // The outer scope (a job that still logs the outcome) keeps scrubbing it.
      expect(r.scrub('inner-rotation-secret-1')).toBe('[REDACTED]');
    });
    expect(r.size).toBe(0);
  });

  it('a scope that threw still forgets its secrets', async () => {
    const r = new Redactor();
    await expect(
      r.scoped(async () => {
        r.add('secret-of-a-failed-run');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(r.size).toBe(0);
  });

  it('memory is bounded by scopes in flight: 1,000 finished scopes leave nothing behind', async () => {
    const r = new Redactor();
    r.add('the-configured-one');
    for (let i = 0; i < 1000; i++) await r.scoped(async () => r.add(`password-number-${i}-${'x'.repeat(20)}`));
    expect(r.size).toBe(1);
    // Its prefix index holds nothing but the configured secret's forms either.
    expect(r.scrub('password-number-5-xxxxxxxxxxxxxxxxxxxx')).toBe('password-number-5-xxxxxxxxxxxxxxxxxxxx');
  });

  it('remove() forgets a kept secret (a replaced token), and a scope adding it again counts afresh', async () => {
    const r = new Redactor();
    r.keep('old-vault-login-token');
    r.remove('old-vault-login-token');
    expect(r.has('old-vault-login-token')).toBe(false);
    await r.scoped(async () => {
      r.add('value-removed-then-added');
      r.remove('value-removed-then-added');
      r.add('value-removed-then-added');
      expect(r.scrub('value-removed-then-added')).toBe('[REDACTED]');
    });
    expect(r.size).toBe(0);
  });

  it("forgetting a secret keeps scrubbing another whose text is the first one's URL-encoded form", async () => {
    const r = new Redactor();
    // A configured value that happens to equal a rotation password's URL-encoded form.
    r.keep('pa%40ss%2Fword');
    await r.scoped(async () => r.add('pa@ss/word'));
    expect(r.scrub('x pa%40ss%2Fword y')).toBe('x [REDACTED] y');
    expect(r.scrub('pa@ss/word')).toBe('pa@ss/word');
  });
});

describe('LiveCredential and the redactor', () => {
  it('keeps the login password it switches to beyond a rotation scope, and at most two generations of it', async () => {
    const { LiveCredential } = await import('../../src/core/pg/live-credential.js');
    const redactor = new Redactor();
    const values = { username: 'rotator', current: 'own-login-gen-0', pending: null as string | null };
    const cred = new LiveCredential({ read: async () => values, check: async () => 'ok' }, redactor, 'test login');
    await cred.resolve();
    for (let i = 1; i <= 5; i++) {
      // The engine sets the new password inside the rotation's redaction scope.
      await redactor.scoped(async () => cred.set(`own-login-gen-${i}`));
      expect(cred.password()).toBe(`own-login-gen-${i}`);
      expect(redactor.has(`own-login-gen-${i}`)).toBe(true);
      expect(redactor.has(`own-login-gen-${i - 1}`)).toBe(true);
    }
    for (let i = 0; i <= 3; i++) expect(redactor.has(`own-login-gen-${i}`), `generation ${i}`).toBe(false);
  });
});
