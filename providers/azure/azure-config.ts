import { z } from 'zod';

// `type: azure-key-vault`: Azure Key Vault (or an emulator such as Lowkey Vault).

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
export type AzureProviderConfig = z.output<typeof azureProviderSchema>;
