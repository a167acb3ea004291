import type { ProviderConfig, ProviderConfigKind } from '../src/core/config/provider-kind.js';
import type { SecretProvider } from '../src/core/provider/secret-provider.js';
import type { ProviderDeps } from './provider-deps.js';

/**
 * One secret store type: how its config entry is parsed and checked (core's ProviderConfigKind)
 * and how a provider is built from it. Each store's folder exports one; provider-registry.ts lists them.
 */
export interface StoreKind<C extends ProviderConfig = ProviderConfig> extends ProviderConfigKind<C> {
  /** Build the provider named `name`; the store's module (and SDK) is imported only here. */
  create(name: string, config: C, deps: ProviderDeps): Promise<SecretProvider>;
}
