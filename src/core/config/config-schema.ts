import { z } from 'zod';
import { accountSchema } from './account-config-schema.js';
import { configIssues } from './config-checks.js';
import {
  checkedString,
  passwordPolicySchema,
  scheduleSchema,
  secretTemplateTextSchema,
  sslmodeSchema,
} from './field-schemas.js';
import { postgresUrlProblem } from './name-checks.js';
import type { ProviderConfig, ProviderConfigKinds } from './provider-kind.js';
import { alertsSchema, httpSchema, queueSchema } from './service-config-schema.js';
import { auditScheduleSchema, targetSchema } from './target-config-schema.js';
import { kubernetesApiSchema, restartListSchema } from './workload-schema.js';

// The config file's schema. Objects are strict so that a misspelt key is an error naming its
// path rather than a silently ignored setting. The sections live by concept in sibling files
// (field, target, provider, account and service schemas; cross-section checks in config-checks.ts);
// this module assembles them and stays the one import for the config's types.

export * from './account-config-schema.js';
export * from './field-schemas.js';
export type * from './provider-kind.js';
export * from './service-config-schema.js';
export * from './target-config-schema.js';
export * from './workload-schema.js';

/** Settings every account inherits unless it sets its own. */
const defaultsSchema = z
  .strictObject({
    schedule: scheduleSchema.default({ every: 90 * 86_400_000 }),
    password: passwordPolicySchema.default({ length: 32, alphabet: 'alphanumeric', require: [], exclude: '' }),
    scramIterations: z
      .number()
      .int()
      .min(4096, 'scramIterations below 4096 weakens the verifier')
      .max(10_000_000)
      .default(4096),
    verifyAttempts: z.number().int().min(1).max(20).default(3),
    /** Workloads every account restarts after a promoted rotation, unless it names its own. */
    restart: restartListSchema.default([]),
    /** Extra secret keys every account renders at each rotation (an account's own map goes on top). */
    secretTemplate: z.record(z.string(), secretTemplateTextSchema).optional(),
    /** How new accounts start: `rotate` (at once) or `adopt` (a secret that logs in becomes current unchanged). */
    onboard: z.enum(['rotate', 'adopt']).default('rotate'),
  })
  .default({
    schedule: { every: 90 * 86_400_000 },
    password: { length: 32, alphabet: 'alphanumeric', require: [], exclude: '' },
    scramIterations: 4096,
    verifyAttempts: 3,
    restart: [],
    onboard: 'rotate',
  });

/**
 * The config file's schema for a build that knows these provider types (the composition root
 * passes providers/provider-registry.ts's list; core knows no store).
 */
export function buildConfigSchema(kinds: ProviderConfigKinds) {
  const [first, ...rest] = kinds.map((k) => k.schema);
  if (!first) throw new Error('buildConfigSchema: no provider types');
  const providerSchema = z.discriminatedUnion('type', [first, ...rest]) as unknown as z.ZodType<ProviderConfig>;
  return (
    z
      .strictObject({
        state: z.strictObject({
          url: checkedString(postgresUrlProblem),
          /** env:/file:/literal, or a provider's current value (so pgrotate can rotate its own state login). */
          password: z
            .union([z.string(), z.strictObject({ provider: z.string().min(1), secret: z.string().min(1) })])
            .optional(),
          sslmode: sslmodeSchema.default('disable'),
          caFile: z.string().optional(),
          /** PostgreSQL schema holding pgrotate's tables. */
          schema: z
            .string()
            .regex(/^[a-z_][a-z0-9_]{0,62}$/)
            .default('pgrotate'),
        }),
        queue: queueSchema.optional(),
        /** Concurrency limits shared by `worker` and `run-due`. */
        limits: z
          .strictObject({
            concurrency: z.number().int().min(1).max(1000).default(8),
            perTarget: z.number().int().min(1).max(1000).default(4),
          })
          .default({ concurrency: 8, perTarget: 4 }),
        /** Named groups of principals, for `exposedTo` and `offboard`. */
        groups: z.record(z.string().min(1), z.array(z.string().min(1)).min(1)).default({}),
        providers: z.record(z.string().min(1), providerSchema).default({}),
        targets: z.record(z.string().min(1), targetSchema).default({}),
        http: httpSchema.optional(),
        alerts: alertsSchema.optional(),
        /** Scheduled security audit of every target by `pgrotate worker`. */
        audit: auditScheduleSchema.optional(),
        /** How rollout restarts reach the Kubernetes API (`restart:` on accounts or defaults). */
        kubernetes: kubernetesApiSchema.optional(),
        defaults: defaultsSchema,
        accounts: z.array(accountSchema).default([]),
      })
      .superRefine((cfg, ctx) => {
        for (const issue of configIssues(cfg, kinds)) ctx.addIssue({ code: 'custom', ...issue });
      })
      // A target's `admin: self` is its accounts' mode: the engine reads it from the account alone.
      .transform((cfg) => ({
        ...cfg,
        accounts: cfg.accounts.map((a) =>
          a.admin === undefined && cfg.targets[a.target]?.admin === 'self' ? { ...a, admin: 'self' as const } : a,
        ),
      }))
  );
}

/** The config schema of one build (see buildConfigSchema). */
export type ConfigSchema = ReturnType<typeof buildConfigSchema>;
export type PgrotateConfig = z.output<ConfigSchema>;
