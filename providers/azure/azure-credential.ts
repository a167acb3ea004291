import {
  ClientSecretCredential,
  DefaultAzureCredential,
  type AccessToken,
  type TokenCredential,
} from '@azure/identity';
import type { Redactor } from '../../src/core/logging/redactor.js';

// How pgrotate authenticates to Azure Key Vault. Three forms, chosen in the provider's config:
//  - nothing: DefaultAzureCredential (workload identity in Kubernetes, managed identity, az login);
//  - { tenantId, clientId, clientSecret }: a service principal's client secret;
//  - { token }: a bearer token obtained elsewhere (CI, emulators such as Lowkey Vault).

export type AzureCredentialConfig =
  { token: string } | { tenantId: string; clientId: string; clientSecret: string } | undefined;

/** A TokenCredential that always answers with one fixed bearer token. */
export class StaticTokenCredential implements TokenCredential {
  constructor(private readonly token: string) {}

  async getToken(): Promise<AccessToken> {
    // The token's real lifetime is unknown; claim an hour so the SDK's cache asks again later.
    return { token: this.token, expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

/** Build the credential for one provider; every secret in its config is registered for redaction first. */
export function createAzureCredential(config: AzureCredentialConfig, redactor: Redactor): TokenCredential {
  if (!config) return new DefaultAzureCredential();
  if ('token' in config) {
    redactor.add(config.token);
    return new StaticTokenCredential(config.token);
  }
  redactor.add(config.clientSecret);
  return new ClientSecretCredential(config.tenantId, config.clientId, config.clientSecret);
}
