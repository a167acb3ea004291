import { expect } from 'vitest';
import type { SecretProvider, SecretValue } from '../../src/core/provider/secret-provider.js';
import type { PgFixture } from './pg-fixture.js';

/**
 * I1: every known password that PostgreSQL accepts for the account's roles is readable from the
 * provider as current or pending. `candidates` are all passwords the test has seen. For an
 * alternating pair the previous role stays valid during its grace period by design, and its
 * credential is readable as the provider's previous value, so `allowPrevious` admits it.
 */
export async function expectNoLostCredential(
  fx: PgFixture,
  provider: SecretProvider,
  secret: string,
  roles: string[],
  candidates: Iterable<string>,
  opts: { allowPrevious?: boolean } = {},
): Promise<void> {
  const current = await provider.getCurrent(secret);
  const pending = await provider.getPending(secret);
  const previous = opts.allowPrevious ? await provider.getPrevious(secret) : null;
  const held = new Set(
    [current, pending, previous]
      .filter((v): v is SecretValue => v !== null)
      .map((v) => `${v.username}\u0000${v.password}`),
  );
  for (const role of roles) {
    for (const pw of new Set(candidates)) {
      if (await fx.canLogin(role, pw))
        expect(held.has(`${role}\u0000${pw}`), `a password accepted for ${role} is not in the provider`).toBe(true);
    }
  }
}

/** I2: the provider's current credential logs in. */
export async function expectCurrentLogsIn(
  fx: PgFixture,
  provider: SecretProvider,
  secret: string,
): Promise<SecretValue> {
  const current = await provider.getCurrent(secret);
  expect(current, `no current value for ${secret}`).not.toBeNull();
  expect(await fx.canLogin(current?.username as string, current?.password as string)).toBe(true);
  return current as SecretValue;
}

/** Every password value a provider holds for a secret right now. */
export async function passwordsIn(provider: SecretProvider, secret: string): Promise<string[]> {
  const values = await Promise.all([
    provider.getCurrent(secret),
    provider.getPending(secret),
    provider.getPrevious(secret),
  ]);
  return values.filter((v): v is SecretValue => v !== null).map((v) => v.password);
}
