import { randomBytes } from 'node:crypto';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { parseSecretText, type SecretValue } from '../../src/core/provider/secret-provider.js';
import type { MotoServiceInfo } from '../services/moto-service.js';

// What the AWS tests use to look at moto directly, the way an application or a person would,
// independently of the provider under test.

/** An SDK client for the moto server with its fake credentials. */
export function motoClient(moto: MotoServiceInfo): SecretsManagerClient {
  return new SecretsManagerClient({
    region: moto.region,
    endpoint: moto.endpoint,
    credentials: {
      accessKeyId: moto.env.AWS_ACCESS_KEY_ID as string,
      secretAccessKey: moto.env.AWS_SECRET_ACCESS_KEY as string,
    },
    maxAttempts: 2,
  });
}

/** A fresh secret name, unique across the test run. */
export function awsSecretName(prefix = 'pg'): string {
  return `${prefix}/app-${randomBytes(5).toString('hex')}`;
}

/**
 * Read AWSCURRENT as an application does. The stage is named explicitly because moto (checked up
 * to 5.2.5) keeps answering an unlabelled GetSecretValue with the version that was current before
 * UpdateSecretVersionStage moved AWSCURRENT; AWS answers with AWSCURRENT. Null when there is no
 * credential to read: no secret, or pgrotate's placeholder (no username or password in it).
 */
export async function consumerRead(client: SecretsManagerClient, secret: string): Promise<SecretValue | null> {
  let text: string | undefined;
  try {
    text = (await client.send(new GetSecretValueCommand({ SecretId: secret, VersionStage: 'AWSCURRENT' })))
      .SecretString;
  } catch (err) {
    if ((err as Error).name === 'ResourceNotFoundException') return null;
    throw err;
  }
  const json = JSON.parse(text ?? 'null') as Record<string, unknown> | null;
  if (!json || typeof json.password !== 'string') return null;
  return parseSecretText(text as string, { provider: 'consumer', secret });
}

/** Version id → staging labels, as ListSecretVersionIds reports them (labelled versions only). */
export async function labelledVersions(
  client: SecretsManagerClient,
  secret: string,
): Promise<Record<string, string[]>> {
  const out = await client.send(new ListSecretVersionIdsCommand({ SecretId: secret, IncludeDeprecated: true }));
  const map: Record<string, string[]> = {};
  for (const v of out.Versions ?? [])
    if (v.VersionId && v.VersionStages && v.VersionStages.length > 0) map[v.VersionId] = [...v.VersionStages].sort();
  return map;
}

/** Every version id the secret has, labelled or not. */
export async function allVersionIds(client: SecretsManagerClient, secret: string): Promise<string[]> {
  const out = await client.send(new ListSecretVersionIdsCommand({ SecretId: secret, IncludeDeprecated: true }));
  return (out.Versions ?? []).map((v) => v.VersionId as string).sort();
}

/** Create a secret whose current value is `text`, as a person would in the console. */
export async function seedSecret(client: SecretsManagerClient, secret: string, text: string): Promise<void> {
  await client.send(new CreateSecretCommand({ Name: secret, SecretString: text }));
}
