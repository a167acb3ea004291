import { z } from 'zod';
import { vaultPathProblem } from '../provider/vault-paths.js';
import { checkedString, durationSchema } from './field-schemas.js';

// The secret stores pgrotate writes credentials to, one schema per provider type. (Issue 28 wants
// each to live in its provider's module; core cannot import providers/, so they stay here for now.)

export const fileProviderSchema = z.strictObject({ type: z.literal('file'), path: z.string().min(1) });

export const vaultProviderSchema = z.strictObject({
  type: z.literal('vault'),
  address: z.string().url(),
  mount: checkedString(vaultPathProblem).default('secret'),
  token: z.string().optional(),
  namespace: z.string().optional(),
  caFile: z.string().optional(),
  /** Path prefix (inside the mount) where pending values live; consumers' policies must not cover it. */
  pendingPrefix: checkedString(vaultPathProblem).default('pgrotate-pending'),
  /** Timeout of one HTTP request to Vault. */
  timeout: durationSchema.default(10_000),
  /** Opt-in: each promote also merge-patches the rotation id and time into the secret's custom metadata. */
  rotationMetadata: z.boolean().default(false),
  auth: z
    .union([
      z.strictObject({ method: z.literal('token'), token: z.string().min(1) }),
      z.strictObject({
        method: z.literal('approle'),
        roleId: z.string().min(1),
        secretId: z.string().min(1),
        mount: z.string().default('approle'),
      }),
      z.strictObject({
        method: z.literal('kubernetes'),
        role: z.string().min(1),
        jwtFile: z.string().default('/var/run/secrets/kubernetes.io/serviceaccount/token'),
        mount: z.string().default('kubernetes'),
      }),
    ])
    .optional(),
});

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

export const azureProviderSchema = z.strictObject({
  type: z.literal('azure-key-vault'),
  vaultUrl: z.string().url(),
  credential: z
    .union([
      z.strictObject({ token: z.string().min(1) }),
      z.strictObject({ tenantId: z.string().min(1), clientId: z.string().min(1), clientSecret: z.string().min(1) }),
    ])
    .optional(),
  caFile: z.string().optional(),
  /** Accept an auth challenge from a host that is not *.vault.azure.net (emulators such as Lowkey Vault). */
  disableChallengeResourceVerification: z.boolean().default(false),
});

export const providerSchema = z.discriminatedUnion('type', [
  fileProviderSchema,
  vaultProviderSchema,
  awsProviderSchema,
  azureProviderSchema,
]);
export type ProviderConfig = z.output<typeof providerSchema>;
