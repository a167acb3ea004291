import { z } from 'zod';
import { checkedString, durationSchema } from '../../src/core/config/field-schemas.js';
import { vaultPathProblem } from './vault-paths.js';

// `type: vault`: HashiCorp Vault or OpenBao, KV version 2.

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
export type VaultProviderConfig = z.output<typeof vaultProviderSchema>;
