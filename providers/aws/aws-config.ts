import { z } from 'zod';
import { durationSchema } from '../../src/core/config/field-schemas.js';

// `type: aws-secrets-manager`: AWS Secrets Manager (or an endpoint that speaks its API).

export const awsProviderSchema = z.strictObject({
  type: z.literal('aws-secrets-manager'),
  region: z.string().min(1),
  endpoint: z.string().url().optional(),
  kmsKeyId: z.string().optional(),
  tags: z.record(z.string(), z.string()).optional(),
  /** SDK attempts per call (first try included); throttling and transient errors back off between them. */
  maxAttempts: z.number().int().min(1).max(20).default(5),
  /** `adaptive` also slows the client down after throttling, which suits fleets of thousands of secrets. */
  retryMode: z.enum(['standard', 'adaptive']).default('adaptive'),
  /** Connect and per-request timeout of one HTTP call. */
  timeout: durationSchema.default(10_000),
});
export type AwsProviderConfig = z.output<typeof awsProviderSchema>;
