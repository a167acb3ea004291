import { ConfigError } from '../src/core/errors.js';
import type { ProviderConfig, ProviderConfigKinds } from '../src/core/config/provider-kind.js';
import type { SecretProvider } from '../src/core/provider/secret-provider.js';
import { awsKind } from './aws/aws-kind.js';
import { azureKind } from './azure/azure-kind.js';
import { fileKind } from './file/file-kind.js';
import { kubernetesKind } from './kubernetes/kubernetes-kind.js';
import type { ProviderDeps } from './provider-deps.js';
import type { StoreKind } from './store-kind.js';
import { vaultKind } from './vault/vault-kind.js';

export type { ProviderDeps } from './provider-deps.js';

// Every secret store this build knows: one folder under providers/ and one line here. Only the
// config modules load up front; each store's module (and its SDK: @azure/* alone is about 50 MB)
// is imported when the config names a provider of that type, so the others cost no start-up
// time or memory.

// The kinds take their own config types; the schema that parsed an entry is the one chosen by its
// `type`, so handing the entry back to that kind is sound.
const kinds = [fileKind, vaultKind, awsKind, azureKind, kubernetesKind] as unknown as readonly StoreKind[];

/** The provider types, for the config schema (src/app/load-config.ts). */
export const providerConfigKinds: ProviderConfigKinds = kinds;

/** Build the provider named `name` from its config entry. */
export async function createProvider(
  name: string,
  config: ProviderConfig,
  deps: ProviderDeps,
): Promise<SecretProvider> {
  const kind = kinds.find((k) => k.type === config.type);
  if (!kind) throw new ConfigError(`providers.${name}: provider type "${config.type}" is not available in this build`);
  return kind.create(name, config, deps);
}
