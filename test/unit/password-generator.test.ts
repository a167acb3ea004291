import { describe, expect, it } from 'vitest';
import {
  generatePassword,
  policyAlphabet,
  policyEntropyBits,
  PasswordPolicyError,
} from '../../src/core/password/password-generator.js';

const base = {
  length: 32,
  alphabet: 'alphanumeric' as const,
  require: [] as Array<'lower' | 'upper' | 'digit' | 'symbol'>,
  exclude: '',
};

describe('password generator', () => {
  it('defaults to 32 alphanumeric characters, different every time', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const p = generatePassword(base);
      expect(p).toMatch(/^[A-Za-z0-9]{32}$/);
      seen.add(p);
    }
    expect(seen.size).toBe(200);
    expect(policyEntropyBits(base)).toBeGreaterThan(190);
  });

  it('honours required classes, exclusions and length', () => {
    const policy = {
      ...base,
      length: 20,
      alphabet: 'alphanumeric-symbols' as const,
      require: ['lower', 'upper', 'digit', 'symbol'] as const,
      exclude: 'lIO01',
    };
    for (let i = 0; i < 200; i++) {
      const p = generatePassword({ ...policy, require: [...policy.require] });
      expect(p).toHaveLength(20);
      expect(p).toMatch(/[a-z]/);
      expect(p).toMatch(/[A-Z]/);
      expect(p).toMatch(/[0-9]/);
      expect(p).toMatch(/[^A-Za-z0-9]/);
      expect(p).not.toMatch(/[lIO01'"\\ $`]/);
    }
  });

  it('draws characters uniformly (chi-squared over 64k characters)', () => {
    const alphabet = policyAlphabet(base);
    const counts = new Map<string, number>();
    let total = 0;
    for (let i = 0; i < 2000; i++)
      for (const c of generatePassword(base)) {
        counts.set(c, (counts.get(c) ?? 0) + 1);
        total++;
      }
    const expected = total / alphabet.length;
    let chi = 0;
    for (const c of alphabet) chi += ((counts.get(c) ?? 0) - expected) ** 2 / expected;
    // 61 degrees of freedom: p=0.001 critical value is about 100.9.
    expect(chi).toBeLessThan(101);
  });

  it('rejects policies that cannot work, with a reason', () => {
    expect(() => policyAlphabet({ ...base, alphabet: { chars: "abcdefghij'" } })).toThrow(PasswordPolicyError);
    expect(() => policyAlphabet({ ...base, exclude: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0' })).toThrow(
      /fewer than 10/,
    );
    expect(() => policyAlphabet({ ...base, require: ['symbol'] })).toThrow(/requires a symbol/);
  });
});
