import type { StoreKind } from '../store-kind.js';
import { vaultProviderSchema, type VaultProviderConfig } from './vault-config.js';
import { vaultSecretNameProblem } from './vault-paths.js';

/** Vault/OpenBao KV v2: secret names are paths, and none may lie under the pending prefix. */
export const vaultKind: StoreKind<VaultProviderConfig> = {
  type: 'vault',
  schema: vaultProviderSchema,
  secretNameProblem: (config, secret) => vaultSecretNameProblem(secret, config.pendingPrefix),
  async create(name, config, deps) {
    return (await import('./vault-provider.js')).createVaultProvider(name, config, deps);
  },
};
