import { randomInt } from 'node:crypto';

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const DIGIT = '0123456789';
// Symbols that survive shells, URLs in connection strings and SQL literals without escaping
// surprises in consumers' code: no quotes, backslash, $, &, |, <, >, backtick or space.
const SYMBOL = '!#%*+,-./:;=?@^_~';

const CLASSES = { lower: LOWER, upper: UPPER, digit: DIGIT, symbol: SYMBOL } as const;

/**
 * A password policy as the generator reads it. The config schema's parsed `password` value is
 * one; declared here so the generator does not depend on the config (which uses it to check policies).
 */
export interface PasswordPolicyConfig {
  length: number;
  alphabet: 'alphanumeric' | 'alphanumeric-symbols' | { chars: string };
  require: ReadonlyArray<keyof typeof CLASSES>;
  exclude: string;
}

/** Thrown when a policy cannot produce any password (e.g. everything excluded). */
export class PasswordPolicyError extends Error {
  override name = 'PasswordPolicyError';
}

/** The concrete alphabet a policy draws from, after exclusions. */
export function policyAlphabet(policy: PasswordPolicyConfig): string {
  const base =
    typeof policy.alphabet === 'object'
      ? policy.alphabet.chars
      : policy.alphabet === 'alphanumeric-symbols'
        ? LOWER + UPPER + DIGIT + SYMBOL
        : LOWER + UPPER + DIGIT;
  const chars = [...new Set(base)].filter((c) => !policy.exclude.includes(c));
  for (const c of chars) {
    // SCRAM verifiers are computed in-process, and SASLprep is the identity only on printable ASCII.
    if (c < '!' || c > '~' || c === "'" || c === '\\') {
      throw new PasswordPolicyError(
        `password alphabet may only hold printable ASCII without quotes or backslash (found ${JSON.stringify(c)})`,
      );
    }
  }
  if (chars.length < 10)
    throw new PasswordPolicyError('password alphabet has fewer than 10 characters after exclusions');
  for (const cls of policy.require) {
    if (!chars.some((c) => CLASSES[cls].includes(c))) {
      throw new PasswordPolicyError(`password policy requires a ${cls} character but the alphabet has none`);
    }
  }
  return chars.join('');
}

/**
 * Generate a password from the OS CSPRNG. Each character is drawn uniformly; a draw that misses
 * a required class is thrown away whole (rejection keeps the distribution uniform over valid
 * passwords, unlike patching in a character at a fixed place).
 */
export function generatePassword(policy: PasswordPolicyConfig): string {
  const alphabet = policyAlphabet(policy);
  for (let attempt = 0; attempt < 1000; attempt++) {
    let out = '';
    for (let i = 0; i < policy.length; i++) out += alphabet[randomInt(alphabet.length)];
    if (policy.require.every((cls) => [...out].some((c) => CLASSES[cls].includes(c)))) return out;
  }
  throw new PasswordPolicyError('password policy is too strict to satisfy at this length');
}

/** Bits of entropy of a password drawn by this policy (for documentation and tests). */
export function policyEntropyBits(policy: PasswordPolicyConfig): number {
  return policy.length * Math.log2(policyAlphabet(policy).length);
}
