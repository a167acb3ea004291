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

/**
 * A PgBouncer in front of the target. With `authFile`, pgrotate keeps the rotated roles' SCRAM
 * verifiers in that file and RELOADs it; without, PgBouncer authenticates by auth_query.
 */
export const pgbouncerSchema = z.strictObject({
  authFile: z.string().min(1).optional(),
  host: hostSchema,
  port: z.number().int().min(1).max(65535).default(6432),
  /** The database applications name through PgBouncer; defaults to the target's. */
  database: databaseNameSchema.optional(),
  /** An admin_users login of PgBouncer's admin console (database `pgbouncer`). */
  admin: z.strictObject({ username: z.string().min(1), password: z.string().min(1) }),
});
export type PgbouncerConfig = z.output<typeof pgbouncerSchema>;

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
  /** PgBouncer instances applications reach this target through, kept in step on every rotation. */
  pgbouncer: z.array(pgbouncerSchema).default([]),
});
export type TargetConfig = z.output<typeof targetSchema>;
