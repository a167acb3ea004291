import { z } from 'zod';
import { databaseNameSchema, durationSchema, hostSchema, roleNameSchema, sslmodeSchema } from './field-schemas.js';

// A target: the PostgreSQL server pgrotate connects to as an admin to rotate passwords.

/** How often the worker audits a target; `every: manual` (the default) never. */
export const auditScheduleSchema = z.strictObject({
  every: durationSchema.refine((ms) => ms >= 10_000, 'audit every: at least 10s'),
});
export type AuditScheduleConfig = z.output<typeof auditScheduleSchema>;

const adminLoginSchema = z.union([
  z.strictObject({ username: roleNameSchema, password: z.string().min(1) }),
  z.strictObject({ provider: z.string().min(1), secret: z.string().min(1) }),
]);
/** A target's admin login, or `self`: none, every account on it sets its own role's verifier. */
const adminSchema = z.union([adminLoginSchema, z.literal('self')]);
export type AdminLoginConfig = z.output<typeof adminLoginSchema>;

export const targetSchema = z.strictObject({
  host: hostSchema,
  port: z.number().int().min(1).max(65535).default(5432),
  database: databaseNameSchema,
  sslmode: sslmodeSchema.default('verify-full'),
  caFile: z.string().optional(),
  admin: adminSchema,
  connectTimeout: durationSchema.default(10_000),
  /** Host the applications use, written into the secret; defaults to `host`. */
  publicHost: hostSchema.optional(),
  /** Tables holding sensitive data (schema.table); `pgrotate audit` checks they use row-level security. */
  sensitiveTables: z.array(z.string().regex(/^[^.]+\.[^.]+$/, 'name a table as schema.table')).default([]),
  /** Scheduled security audit of this target by `pgrotate worker` (overrides the global `audit`). */
  audit: auditScheduleSchema.optional(),
});
export type TargetConfig = z.output<typeof targetSchema>;
