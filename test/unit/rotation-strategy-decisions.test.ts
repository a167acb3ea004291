import { describe, expect, it } from 'vitest';
import { accountSchema } from '../../src/core/config/config-schema.js';
import { ProviderError, RoleNotFoundError } from '../../src/core/errors.js';
import { accountError } from '../../src/core/rotation/account-error.js';
import { AlternatingStrategy } from '../../src/core/rotation/strategies/alternating.js';
import { SingleUserStrategy } from '../../src/core/rotation/strategies/single-user.js';
import { strategyFor } from '../../src/core/rotation/strategies/strategy-for.js';
import type { SecretValue } from '../../src/core/provider/secret-provider.js';
import type { RotationRecord } from '../../src/core/state/rotation-record.js';

// The strategy decisions the engine asks for, one account of each kind, and the one helper that
// builds the engine's errors. The engine over fakes (rotation-state-machine*.test.ts) and over
// real servers (test/integration) covers how they are used.

const base = { target: 'main', provider: 'mem', secret: 'pg/app' };
const single = accountSchema.parse({ ...base, name: 'strat-single', role: 'app' });
const pair = accountSchema.parse({ ...base, name: 'strat-pair', strategy: 'alternating', roles: ['app_a', 'app_b'] });

function value(username: string, rotationId: string | null): SecretValue {
  return { username, password: 'not-a-real-password', host: 'h', port: 5432, dbname: 'd', rotationId } as SecretValue;
}

function rotation(patch: Partial<RotationRecord>): RotationRecord {
  return { id: 'r-new', targetRole: 'app', previousRole: null, appliedAt: null, ...patch } as RotationRecord;
}

describe('rotation strategies', () => {
  it('strategyFor picks the strategy of the account', () => {
    expect(strategyFor(single)).toBeInstanceOf(SingleUserStrategy);
    expect(strategyFor(pair)).toBeInstanceOf(AlternatingStrategy);
  });

  it('single-user: sets its one role, restores the previous credential, never has an inactive role', () => {
    const s = strategyFor(single);
    expect(s.earlyProbeRole).toBe('app');
    expect(s.chooseRoles(null)).toEqual({ targetRole: 'app', previousRole: null });
    expect(s.chooseRoles(value('app', 'r-old'))).toEqual({ targetRole: 'app', previousRole: 'app' });
    expect(s.undoable(value('app', 'r-old'), { targetRole: 'app', previousRole: 'app' })).toBe(true);
    expect(s.undoable(null, { targetRole: 'app', previousRole: null })).toBe(false);
    expect(s.restorable(value('app', 'r-old'), rotation({}))).toBe(true);
    expect(s.restorable(value('app', 'r-new'), rotation({}))).toBe(false);
    expect(s.isInactive('app', value('other', 'r-old'))).toBe(false);
    expect(s.appliedValidUntil()).toBeUndefined();
    const appliedAt = new Date('2026-01-01T00:00:00Z');
    expect(s.oldCredentialExpiry(rotation({ appliedAt }), false)).toEqual(appliedAt);
  });

  it('alternating: sets the role applications do not use, which alone may lose its password', () => {
    const s = strategyFor(pair);
    expect(s.earlyProbeRole).toBeNull();
    expect(s.chooseRoles(null)).toEqual({ targetRole: 'app_a', previousRole: null });
    expect(s.chooseRoles(value('app_a', 'r-old'))).toEqual({ targetRole: 'app_b', previousRole: 'app_a' });
    expect(s.chooseRoles(value('app_b', 'r-old'))).toEqual({ targetRole: 'app_a', previousRole: 'app_b' });
    expect(s.chooseRoles(value('stranger', 'r-old'))).toEqual({ targetRole: 'app_a', previousRole: null });
    expect(s.isInactive('app_b', value('app_a', 'r-old'))).toBe(true);
    expect(s.isInactive('app_a', value('app_a', 'r-old'))).toBe(false);
    expect(s.restorable(value('app_b', 'r-old'), rotation({ targetRole: 'app_b' }))).toBe(false);
    expect(s.appliedValidUntil()).toBe('infinity');
    expect(s.oldCredentialExpiry(rotation({ previousRole: null }), false)).toBeNull();
    const before = Date.now();
    const graceEnd = s.oldCredentialExpiry(rotation({ previousRole: 'app_a' }), false) as Date;
    expect(graceEnd.getTime()).toBeGreaterThanOrEqual(before + 86_400_000);
    const now = s.oldCredentialExpiry(rotation({ previousRole: 'app_a' }), true) as Date;
    expect(now.getTime()).toBeLessThan(before + 60_000);
  });

  it('renewValidUntil sets the expiry apply writes, for either strategy', () => {
    const before = Date.now();
    for (const account of [
      accountSchema.parse({ ...base, name: 'strat-renew-1', role: 'app', renewValidUntil: '30d' }),
      accountSchema.parse({
        ...base,
        name: 'strat-renew-2',
        strategy: 'alternating',
        roles: ['a', 'b'],
        renewValidUntil: '30d',
      }),
    ]) {
      const at = strategyFor(account).appliedValidUntil() as Date;
      expect(at.getTime()).toBeGreaterThanOrEqual(before + 30 * 86_400_000);
    }
  });
});

describe('accountError', () => {
  it('names the account and target, and keeps the class and its own options', () => {
    const e = accountError(RoleNotFoundError, single, 'account strat-single: gone');
    expect(e).toBeInstanceOf(RoleNotFoundError);
    expect([e.message, e.account, e.target, e.permanent]).toEqual([
      'account strat-single: gone',
      'strat-single',
      'main',
      true,
    ]);
    const cause = new Error('boom');
    const p = accountError(ProviderError, single, 'account strat-single: provider', { secret: 'pg/app', cause });
    expect([p.secret, p.cause, p.account, p.target]).toEqual(['pg/app', cause, 'strat-single', 'main']);
  });
});
