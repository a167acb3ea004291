import { z } from 'zod';
import { durationSchema, passwordPolicySchema, roleNameSchema, scheduleSchema } from './field-schemas.js';

// An account: the login role (or pair of roles) pgrotate rotates and the secret it writes.

const accountCommon = {
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'account name: letters, digits, ".", "_" and "-" (max 100)'),
  target: z.string().min(1),
  provider: z.string().min(1),
  secret: z.string().min(1),
  exposedTo: z.array(z.string().min(1)).default([]),
  schedule: scheduleSchema.optional(),
  password: passwordPolicySchema.optional(),
  allowSuperuser: z.boolean().default(false),
  /** Opt-in: each rotation also sets the role's VALID UNTIL to this long after the new password. */
  renewValidUntil: durationSchema.optional(),
  /** How a new account starts: `rotate` at once, or `adopt` its working secret (default: `defaults.onboard`). */
  onboard: z.enum(['rotate', 'adopt']).optional(),
};

export const singleUserAccountSchema = z.strictObject({
  ...accountCommon,
  strategy: z.literal('single-user'),
  role: roleNameSchema,
});

export const alternatingAccountSchema = z.strictObject({
  ...accountCommon,
  strategy: z.literal('alternating'),
  roles: z
    .tuple([roleNameSchema, roleNameSchema])
    .refine(([a, b]) => a !== b, 'the two roles of an alternating account must differ'),
  gracePeriod: durationSchema.default(86_400_000),
});

export const accountSchema = z.preprocess(
  (raw) => (raw && typeof raw === 'object' && !('strategy' in raw) ? { ...raw, strategy: 'single-user' } : raw),
  z.discriminatedUnion('strategy', [singleUserAccountSchema, alternatingAccountSchema]),
);
export type AccountConfig = z.output<typeof accountSchema>;

/** The login roles an account manages: its role, or both roles of an alternating pair. */
export function accountRoles(account: AccountConfig): string[] {
  return account.strategy === 'alternating' ? account.roles : [account.role];
}
