import { z } from 'zod';
import {
  durationSchema,
  passwordPolicySchema,
  roleNameSchema,
  scheduleSchema,
  secretTemplateTextSchema,
} from './field-schemas.js';
import { restartListSchema } from './workload-schema.js';

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
  /** Workloads to roll (a pod-template annotation) once a rotation has promoted; replaces defaults'. */
  restart: restartListSchema.optional(),
  /** No admin login: pgrotate logs in as the role with its stored credential and sets its own new verifier. */
  admin: z.literal('self').optional(),
  /** Extra secret keys rendered at every rotation, on top of defaults.secretTemplate (null drops a default key). */
  secretTemplate: z.record(z.string(), secretTemplateTextSchema.nullable()).optional(),
  /** How a new account starts: `rotate` at once, or `adopt` its working secret (default: `defaults.onboard`). */
  onboard: z.enum(['rotate', 'adopt']).optional(),
};

export const singleUserAccountSchema = z.strictObject({
  ...accountCommon,
  strategy: z.literal('single-user'),
  role: roleNameSchema,
  /** Alternating accounts only: accepted here so that config-checks refuses it naming the account. */
  expireWhenUnused: z.unknown().optional(),
});

export const alternatingAccountSchema = z.strictObject({
  ...accountCommon,
  strategy: z.literal('alternating'),
  roles: z
    .tuple([roleNameSchema, roleNameSchema])
    .refine(([a, b]) => a !== b, 'the two roles of an alternating account must differ'),
  gracePeriod: durationSchema.default(86_400_000),
  /** pgrotate creates roles[1] as a copy of roles[0] (memberships, attributes, settings) when it is missing. */
  createTwin: z.boolean().default(false),
  /** Opt-in: expire the previous role (VALID UNTIL now) once it had no session for this long; shorter than gracePeriod. */
  expireWhenUnused: durationSchema.optional(),
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

/** Does the account rotate without an admin login (`admin: self` on it or on its target)? */
export function selfAdministered(account: AccountConfig): boolean {
  return account.admin === 'self';
}
