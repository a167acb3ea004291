import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { SecretClient } from '@azure/keyvault-secrets';
import { StaticTokenCredential } from '../../providers/azure/azure-credential.js';
import { AzureKeyVaultProvider } from '../../providers/azure/azure-key-vault-provider.js';
import { parseSecretText, type SecretValue } from '../../src/core/provider/secret-provider.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import type { ConformanceHarness } from '../conformance/provider-conformance.js';
import type { LowkeyStartFailure } from '../services/lowkey-vault-service.js';
import type { LowkeyVaultInfo } from '../support/lowkey-vault-server.js';
import { service } from '../support/provided.js';

// What the Lowkey Vault tests share: the running emulator, a provider on it, and a plain SDK
// client that reads secrets the way applications do (latest version, no pgrotate code).
// Part of `npm test`; the emulator is started once per run by test/services/lowkey-vault-service.ts.

/** The running emulator; throws the startup error (with the emulator's output) when it did not start. */
export function lowkey(): LowkeyVaultInfo {
  return lowkeyInfoOrThrow(service<LowkeyVaultInfo | LowkeyStartFailure>('lowkey'));
}

/** The emulator's facts, or an error carrying why it did not start. */
export function lowkeyInfoOrThrow(info: LowkeyVaultInfo | LowkeyStartFailure): LowkeyVaultInfo {
  if ('startupError' in info) throw new Error(`Lowkey Vault was expected but did not start: ${info.startupError}`);
  return info;
}

/** The provider's config entry as a user would write it for Lowkey Vault. */
export function lowkeyProviderConfig(info: LowkeyVaultInfo): Record<string, unknown> {
  return {
    type: 'azure-key-vault',
    vaultUrl: info.vaultUrl,
    credential: { token: 'env:AZ_TOKEN' },
    caFile: info.caFile,
    disableChallengeResourceVerification: true,
  };
}

export function lowkeyProvider(info: LowkeyVaultInfo, redactor = new Redactor()): AzureKeyVaultProvider {
  return new AzureKeyVaultProvider({
    name: 'az',
    vaultUrl: info.vaultUrl,
    credential: new StaticTokenCredential(info.token),
    caFile: info.caFile,
    disableChallengeResourceVerification: true,
    redactor,
  });
}

/** An SDK client independent of the provider: what an application uses. */
export function consumerClient(info: LowkeyVaultInfo): SecretClient {
  return new SecretClient(info.vaultUrl, new StaticTokenCredential(info.token), {
    disableChallengeResourceVerification: true,
    tlsOptions: { ca: [...rootCertificates, readFileSync(info.caFile, 'utf8')] },
  });
}

/** The latest version's value as an application reads it, or null when there is none. */
export async function consumerRead(client: SecretClient, secret: string): Promise<SecretValue | null> {
  try {
    const found = await client.getSecret(secret);
    return parseSecretText(found.value ?? '', { provider: 'consumer', secret });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}

/** Number of versions of a secret (0 when it does not exist). */
export async function versionCount(client: SecretClient, secret: string): Promise<number> {
  let n = 0;
  try {
    for await (const _ of client.listPropertiesOfSecretVersions(secret)) n++;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return 0;
    throw err;
  }
  return n;
}

/** A secret name unique to this run (names are global in the emulator's vault). */
export function uniqueSecretName(prefix = 'pgr'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** The conformance harness for the Azure provider on Lowkey Vault. */
export function lowkeyHarness(): ConformanceHarness {
  const info = lowkey();
  const provider = lowkeyProvider(info);
  const client = consumerClient(info);
  const run = randomBytes(4).toString('hex');
  let n = 0;
  return {
    provider,
    secretName: () => `pgr-conf-${run}-${n++}`,
    consumerRead: (secret) => consumerRead(client, secret),
    seedRaw: async (secret, text) => {
      await client.setSecret(secret, text);
    },
    cleanup: () => provider.close(),
  };
}
