import type { StoreKind } from '../store-kind.js';
import { kubernetesProviderSchema, type KubernetesProviderConfig } from './kubernetes-config.js';
import { kubernetesSecretNameProblem } from './kubernetes-names.js';

/** Kubernetes Secrets; @kubernetes/client-node loads only when a config names this type. */
export const kubernetesKind: StoreKind<KubernetesProviderConfig> = {
  type: 'kubernetes',
  schema: kubernetesProviderSchema,
  secretNameProblem: (_config, secret, rotated) => kubernetesSecretNameProblem(secret, rotated),
  async create(name, config, deps) {
    return (await import('./kubernetes-provider.js')).createKubernetesProvider(name, config, deps);
  },
};
