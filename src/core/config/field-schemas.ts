import { z } from 'zod';
import { policyAlphabet } from '../password/password-generator.js';
import { CronSyntaxError, parseCron } from '../schedule/cron.js';
import { isKnownTimeZone } from '../schedule/zone-clock.js';
import { durationProblem, parseDuration } from './duration.js';
import { hostProblem, identifierProblem } from './name-checks.js';

// The config's building blocks shared by several sections: durations, schedules, password
// policies and checked names. Their messages never include a checked value.

/** A duration string (30s, 15m, 2h, 90d) parsed to milliseconds. */
export const durationSchema = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: durationProblem(text) ?? `invalid duration "${text}"` });
    return z.NEVER;
  }
  return ms;
});

export const scheduleSchema = z.union([
  z.literal('manual'),
  z.strictObject({ every: durationSchema }),
  z.strictObject({
    cron: z.string().superRefine((c, ctx) => {
      try {
        parseCron(c);
      } catch (err) {
        if (!(err instanceof CronSyntaxError)) throw err;
        ctx.addIssue({
          code: 'custom',
          message: `cron expression "${c}": ${err.message} (five fields, UTC or timezone: minute hour day-of-month month day-of-week)`,
        });
      }
    }),
    /** IANA zone whose wall clock the cron expression follows; UTC when absent. */
    timezone: z
      .string()
      .refine(isKnownTimeZone, { error: (issue) => `unknown time zone ${JSON.stringify(issue.input)}` })
      .optional(),
    window: durationSchema.optional(),
  }),
]);
export type Schedule = z.output<typeof scheduleSchema>;

export const passwordPolicySchema = z
  .strictObject({
    length: z.number().int().min(16, 'length must be at least 16').max(256).default(32),
    alphabet: z
      .enum(['alphanumeric', 'alphanumeric-symbols'])
      .or(z.strictObject({ chars: z.string().min(10) }))
      .default('alphanumeric'),
    require: z.array(z.enum(['lower', 'upper', 'digit', 'symbol'])).default([]),
    exclude: z.string().default(''),
  })
  .superRefine((policy, ctx) => {
    // Fail at load time, not at the first rotation months later.
    try {
      policyAlphabet(policy);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });
export type PasswordPolicyConfig = z.output<typeof passwordPolicySchema>;

/** A string that a `problem` check accepts; its message never includes the value. */
export function checkedString(problem: (value: string) => string | null) {
  return z
    .string()
    .min(1)
    .superRefine((value, ctx) => {
      const why = problem(value);
      if (why) ctx.addIssue({ code: 'custom', message: why });
    });
}
/** A PostgreSQL role name: no control characters, at most 63 bytes. */
export const roleNameSchema = checkedString((v) => identifierProblem(v, 'role name'));
export const databaseNameSchema = checkedString((v) => identifierProblem(v, 'database name'));
export const hostSchema = checkedString(hostProblem);

export const sslmodeSchema = z.enum(['disable', 'require', 'verify-ca', 'verify-full']);
export type SslMode = z.output<typeof sslmodeSchema>;

/** A secretTemplate value: the template text (placeholders and key names are checked in secret-template-check.ts). */
export const secretTemplateTextSchema = z.string().min(1).max(4096);
