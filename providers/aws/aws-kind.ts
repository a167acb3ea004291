import type { StoreKind } from '../store-kind.js';
import { awsProviderSchema, type AwsProviderConfig } from './aws-config.js';

/** AWS Secrets Manager; its SDK loads only when a config names this type. */
export const awsKind: StoreKind<AwsProviderConfig> = {
  type: 'aws-secrets-manager',
  schema: awsProviderSchema,
  async create(name, config, deps) {
    return (await import('./aws-secrets-manager-factory.js')).createAwsSecretsManagerProvider(name, config, deps);
  },
};
