import { ConfigError } from '../src/errors.js';
import type { ProviderConfig } from '../src/config/config-schema.js';
import type { Redactor } from '../src/logging/redactor.js';
import type { Logger } from '../src/logging/logger.js';
import { createAwsSecretsManagerProvider } from './aws-secrets-manager-factory.js';
import { createAzureKeyVaultProvider } from './azure-key-vault-provider.js';
import { FileProvider } from './file-provider.js';
import type { SecretProvider } from './secret-provider.js';
import { createVaultProvider } from './vault-provider.js';

/** What a provider factory may use besides its own config. */
export interface ProviderDeps {
  redactor: Redactor;
  log: Logger;
  /** The process environment as the command sees it (tests pass their own). */
  env?: NodeJS.ProcessEnv | undefined;
}

/** Build the provider named `name` from its config entry. */
export async function createProvider(name: string, config: ProviderConfig, _deps: ProviderDeps): Promise<SecretProvider> {
  switch (config.type) {
    case 'file':
      return new FileProvider({ name, path: config.path });
    case 'vault':
      return createVaultProvider(name, config, _deps);
    case 'azure-key-vault':
      return createAzureKeyVaultProvider(name, config, _deps);
    case 'aws-secrets-manager':
      return createAwsSecretsManagerProvider(name, config, _deps);
    default:
      throw new ConfigError(`providers.${name}: provider type "${(config as { type: string }).type}" is not available in this build`);
  }
}
