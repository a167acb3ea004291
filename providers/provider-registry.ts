import { ConfigError } from '../src/core/errors.js';
import type { ProviderConfig } from '../src/core/config/config-schema.js';
import { FileProvider } from './file-provider.js';
import type { ProviderDeps } from './provider-deps.js';
import type { SecretProvider } from '../src/core/provider/secret-provider.js';

export type { ProviderDeps } from './provider-deps.js';

// Each secret store's module (and its SDK: @azure/* alone is about 50 MB) is imported only when
// the config names a provider of that type, so the others cost no start-up time or memory.

/** Build the provider named `name` from its config entry. */
export async function createProvider(
  name: string,
  config: ProviderConfig,
  _deps: ProviderDeps,
): Promise<SecretProvider> {
  switch (config.type) {
    case 'file':
      return new FileProvider({ name, path: config.path });
    case 'vault':
      return (await import('./vault-provider.js')).createVaultProvider(name, config, _deps);
    case 'azure-key-vault':
      return (await import('./azure-key-vault-provider.js')).createAzureKeyVaultProvider(name, config, _deps);
    case 'aws-secrets-manager':
      return (await import('./aws-secrets-manager-factory.js')).createAwsSecretsManagerProvider(name, config, _deps);
    default:
      throw new ConfigError(
        `providers.${name}: provider type "${(config as { type: string }).type}" is not available in this build`,
      );
  }
}
