import type { AwsProviderConfig } from './aws-config.js';
import { AwsSecretsManagerProvider } from './aws-secrets-manager-provider.js';
import type { ProviderDeps } from '../provider-deps.js';

type AwsConfig = AwsProviderConfig;

/** Build the AWS Secrets Manager provider from its config entry; connects lazily. */
export function createAwsSecretsManagerProvider(
  name: string,
  config: AwsConfig,
  deps: ProviderDeps,
): AwsSecretsManagerProvider {
  return new AwsSecretsManagerProvider({
    name,
    region: config.region,
    endpoint: config.endpoint,
    kmsKeyId: config.kmsKeyId,
    tags: config.tags,
    maxAttempts: config.maxAttempts,
    retryMode: config.retryMode,
    timeoutMs: config.timeout,
    env: deps.env,
    redactor: deps.redactor,
  });
}
