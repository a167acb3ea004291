import type { StoreKind } from '../store-kind.js';
import { azureProviderSchema, type AzureProviderConfig } from './azure-config.js';
import { azureSecretNameProblem } from './azure-secret-name.js';

/** Azure Key Vault: names are 1-127 letters, digits and dashes, with room for the pending companion. */
export const azureKind: StoreKind<AzureProviderConfig> = {
  type: 'azure-key-vault',
  schema: azureProviderSchema,
  secretNameProblem: (_config, secret, rotated) => azureSecretNameProblem(secret, rotated),
  async create(name, config, deps) {
    return (await import('./azure-key-vault-provider.js')).createAzureKeyVaultProvider(name, config, deps);
  },
};
