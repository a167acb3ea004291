import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
  type DescribeSecretCommandOutput,
} from '@aws-sdk/client-secrets-manager';
import { ProviderError } from '../../src/core/errors.js';
import { PendingConflictError } from '../../src/core/provider/pending-conflict-error.js';
import type { Redactor } from '../../src/core/logging/redactor.js';
import { describeAwsError, isAwsAccessDenied, isAwsMarkedDeleted, isAwsNotFound } from './aws-error.js';
import {
  parseSecretText,
  secretPayload,
  type RotatedSecretValue,
  type SecretProvider,
  type SecretValue,
} from '../../src/core/provider/secret-provider.js';

// AWS Secrets Manager with its own staging labels, as AWS's rotation functions use them:
//  - the new value is a version labelled AWSPENDING whose VersionId is the rotation id (the
//    ClientRequestToken), so a retried stage is the same version;
//  - promote moves AWSCURRENT to it (Secrets Manager then labels the old one AWSPREVIOUS) and
//    removes AWSPENDING from it;
//  - consumers keep calling GetSecretValue, which reads AWSCURRENT.
// A brand-new secret cannot hold only a pending value: Secrets Manager labels the first version of
// any secret AWSCURRENT whatever VersionStages says. So a new secret is created with a placeholder
// current value that is not a credential (no username/password, reads as "no current value"), and
// the first real credential is staged beside it like any later one.

export const AWSCURRENT = 'AWSCURRENT';
export const AWSPENDING = 'AWSPENDING';
export const AWSPREVIOUS = 'AWSPREVIOUS';

/** The current value of a secret created by pgrotate before its first rotation finishes. */
export const PLACEHOLDER_TEXT = JSON.stringify({
  pgrotatePlaceholder: true,
  note: 'created by pgrotate; the first credential is pending and becomes current when its rotation completes',
});

export interface AwsSecretsManagerProviderOptions {
  name: string;
  region: string;
  endpoint?: string | undefined;
  kmsKeyId?: string | undefined;
  tags?: Record<string, string> | undefined;
  maxAttempts?: number | undefined;
  retryMode?: 'standard' | 'adaptive' | undefined;
  timeoutMs?: number | undefined;
  /** Environment for static credentials (AWS_ACCESS_KEY_ID...); otherwise the SDK's default chain. */
  env?: NodeJS.ProcessEnv | undefined;
  redactor?: Redactor | undefined;
}

type VersionStages = Record<string, string[]>;

/** Secret store backed by AWS Secrets Manager staging labels. */
export class AwsSecretsManagerProvider implements SecretProvider {
  readonly name: string;
  private readonly opts: AwsSecretsManagerProviderOptions;
  private clientInstance: SecretsManagerClient | null = null;

  constructor(opts: AwsSecretsManagerProviderOptions) {
    this.name = opts.name;
    this.opts = opts;
  }

  /** Built on first use, so constructing the provider does no I/O. */
  private get client(): SecretsManagerClient {
    if (!this.clientInstance) {
      const { region, endpoint, maxAttempts, retryMode, timeoutMs, env } = this.opts;
      const timeout = timeoutMs ?? 10_000;
      this.clientInstance = new SecretsManagerClient({
        region,
        ...(endpoint ? { endpoint } : {}),
        maxAttempts: maxAttempts ?? 5,
        retryMode: retryMode ?? 'adaptive',
        requestHandler: { connectionTimeout: timeout, requestTimeout: timeout },
        ...staticCredentials(env),
      });
    }
    return this.clientInstance;
  }

  async getCurrent(secret: string): Promise<SecretValue | null> {
    const read = await this.readStageWithDate(secret, AWSCURRENT);
    if (read.text === null) {
      // Absent, or marked for deletion (which some endpoints report as absent): say which.
      await this.describe(secret);
      return null;
    }
    const value = this.parse(secret, read.text);
    // CreatedDate of AWSCURRENT's version: when the value applications read was written.
    if (value && read.created) value.lastChanged = read.created;
    return value;
  }

  async getPending(secret: string): Promise<SecretValue | null> {
    // One call: the engine reads pending at every step, and the answer carries the labels.
    let out;
    try {
      out = await this.client.send(new GetSecretValueCommand({ SecretId: secret, VersionStage: AWSPENDING }));
    } catch (err) {
      if (isAwsNotFound(err)) return null;
      throw this.error('GetSecretValue', secret, err);
    }
    // AWSPENDING still on the current version is an interrupted promote: that value is current.
    if (!out.VersionId || out.VersionStages?.includes(AWSCURRENT)) return null;
    const value = this.parse(secret, this.textOf(secret, out.SecretString));
    return value ? { ...value, rotationId: out.VersionId } : null;
  }

  async getPrevious(secret: string): Promise<SecretValue | null> {
    const text = await this.readStage(secret, AWSPREVIOUS);
    return text === null ? null : this.parse(secret, text);
  }

  async stagePending(secret: string, value: RotatedSecretValue): Promise<SecretValue> {
    let info = await this.describe(secret);
    if (!info) info = await this.createWithPlaceholder(secret);
    else if (!versionWith(info.stages, AWSCURRENT)) await this.putPlaceholder(secret, info.stages);

    const pendingId = pendingVersion(info.stages);
    if (pendingId && pendingId !== value.rotationId) {
      // The labels name the other rotation; its value is read so the engine need not read it again.
      throw new PendingConflictError(
        `provider ${this.name}: secret ${secret} already has a pending value (AWSPENDING) of rotation ${pendingId}`,
        await this.readPendingVersion(secret, pendingId),
        { secret },
      );
    }
    const ownStages = info.stages[value.rotationId];
    if (ownStages) {
      // A retried stage: keep the first value. A version without its label (discarded and staged
      // again) gets AWSPENDING back; one already current was promoted and is returned as it is.
      if (!ownStages.includes(AWSPENDING) && !ownStages.includes(AWSCURRENT)) {
        await this.moveStage(secret, AWSPENDING, { to: value.rotationId, from: versionWith(info.stages, AWSPENDING) });
      }
      return this.readPendingVersion(secret, value.rotationId);
    }
    const stale = versionWith(info.stages, AWSPENDING);
    if (stale) {
      // AWSPENDING left on the current version by an interrupted promote: it is current, not pending.
      await this.moveStage(secret, AWSPENDING, { from: stale });
    }
    const text = JSON.stringify(secretPayload(value));
    this.opts.redactor?.add(value.password);
    try {
      await this.client.send(
        new PutSecretValueCommand({
          SecretId: secret,
          SecretString: text,
          ClientRequestToken: value.rotationId,
          VersionStages: [AWSPENDING],
        }),
      );
    } catch (err) {
      // A concurrent or earlier attempt created this version with another value: keep that one.
      const again = await this.describe(secret).catch(() => null);
      if (again?.stages[value.rotationId]?.includes(AWSPENDING))
        return this.readPendingVersion(secret, value.rotationId);
      throw this.error('PutSecretValue', secret, err);
    }
    return value;
  }

  async promotePending(secret: string, rotationId: string): Promise<void> {
    const info = await this.describe(secret);
    const stages = info?.stages[rotationId];
    if (!info || !stages) {
      throw new ProviderError(
        `provider ${this.name}: secret ${secret} has no pending value of rotation ${rotationId} to promote`,
        { secret },
      );
    }
    if (!stages.includes(AWSCURRENT)) {
      if (!stages.includes(AWSPENDING)) {
        throw new ProviderError(
          `provider ${this.name}: secret ${secret} has no pending value of rotation ${rotationId} to promote (the version exists without AWSPENDING)`,
          {
            secret,
          },
        );
      }
      // Secrets Manager labels the version AWSCURRENT leaves AWSPREVIOUS.
      await this.moveStage(secret, AWSCURRENT, { to: rotationId, from: versionWith(info.stages, AWSCURRENT) });
    }
    if (stages.includes(AWSPENDING)) await this.moveStage(secret, AWSPENDING, { from: rotationId });
  }

  async discardPending(secret: string, rotationId: string): Promise<void> {
    const info = await this.describe(secret);
    if (!info?.stages[rotationId]?.includes(AWSPENDING)) return;
    await this.moveStage(secret, AWSPENDING, { from: rotationId });
  }

  async close(): Promise<void> {
    this.clientInstance?.destroy();
    this.clientInstance = null;
  }

  /** The version ids and their labels, or null when the secret does not exist. */
  private async describe(secret: string): Promise<{ stages: VersionStages } | null> {
    let out: DescribeSecretCommandOutput;
    try {
      out = await this.client.send(new DescribeSecretCommand({ SecretId: secret }));
    } catch (err) {
      if (isAwsNotFound(err)) return null;
      throw this.error('DescribeSecret', secret, err);
    }
    if (out.DeletedDate) {
      throw new ProviderError(
        `provider ${this.name}: secret ${secret} is scheduled for deletion (on ${out.DeletedDate.toISOString()}); restore it with RestoreSecret or point the account at another secret`,
        { secret },
      );
    }
    return { stages: out.VersionIdsToStages ?? {} };
  }

  private async createWithPlaceholder(secret: string): Promise<{ stages: VersionStages }> {
    const { kmsKeyId, tags } = this.opts;
    try {
      const out = await this.client.send(
        new CreateSecretCommand({
          Name: secret,
          SecretString: PLACEHOLDER_TEXT,
          Description: 'PostgreSQL credential rotated by pgrotate',
          ...(kmsKeyId ? { KmsKeyId: kmsKeyId } : {}),
          ...(tags && Object.keys(tags).length > 0
            ? { Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }
            : {}),
        }),
      );
      return { stages: out.VersionId ? { [out.VersionId]: [AWSCURRENT] } : {} };
    } catch (err) {
      if ((err as { name?: string }).name === 'ResourceExistsException') {
        // Another process created it first (or a retried call already did).
        const info = await this.describe(secret);
        if (info) return info;
      }
      throw this.error('CreateSecret', secret, err);
    }
  }

  /** A secret that exists without a current value (created by hand with no value) gets the placeholder. */
  private async putPlaceholder(secret: string, stages: VersionStages): Promise<void> {
    try {
      const out = await this.client.send(
        new PutSecretValueCommand({ SecretId: secret, SecretString: PLACEHOLDER_TEXT, VersionStages: [AWSCURRENT] }),
      );
      if (out.VersionId) stages[out.VersionId] = [AWSCURRENT];
    } catch (err) {
      throw this.error('PutSecretValue', secret, err);
    }
  }

  private async moveStage(
    secret: string,
    stage: string,
    move: { to?: string | undefined; from?: string | undefined },
  ): Promise<void> {
    try {
      await this.client.send(
        new UpdateSecretVersionStageCommand({
          SecretId: secret,
          VersionStage: stage,
          ...(move.to ? { MoveToVersionId: move.to } : {}),
          ...(move.from ? { RemoveFromVersionId: move.from } : {}),
        }),
      );
    } catch (err) {
      throw this.error('UpdateSecretVersionStage', secret, err);
    }
  }

  /** The text labelled `stage`, or null when the secret or the label does not exist. */
  private async readStage(secret: string, stage: string): Promise<string | null> {
    return (await this.readStageWithDate(secret, stage)).text;
  }

  private async readStageWithDate(secret: string, stage: string): Promise<{ text: string | null; created?: Date }> {
    try {
      const out = await this.client.send(new GetSecretValueCommand({ SecretId: secret, VersionStage: stage }));
      return { text: this.textOf(secret, out.SecretString), created: out.CreatedDate };
    } catch (err) {
      if (isAwsNotFound(err)) return { text: null };
      throw this.error('GetSecretValue', secret, err);
    }
  }

  private async readPendingVersion(secret: string, versionId: string): Promise<SecretValue> {
    let text: string | null;
    try {
      const out = await this.client.send(new GetSecretValueCommand({ SecretId: secret, VersionId: versionId }));
      text = this.textOf(secret, out.SecretString);
    } catch (err) {
      throw this.error('GetSecretValue', secret, err);
    }
    const value = text === null ? null : this.parse(secret, text);
    if (!value)
      throw new ProviderError(
        `provider ${this.name}: the pending version ${versionId} of secret ${secret} holds no credential`,
        { secret },
      );
    // The version id is the rotation id: that is what discard and promote look for, even when the
    // value was written by someone else (an AWS rotation function leaves no rotationId in the JSON).
    return { ...value, rotationId: versionId };
  }

  private textOf(secret: string, text: string | undefined): string {
    if (text === undefined) {
      throw new ProviderError(
        `provider ${this.name}: secret ${secret} holds binary data (SecretBinary), not a JSON credential`,
        { secret },
      );
    }
    return text;
  }

  /** The credential in `text`, or null for pgrotate's placeholder. */
  private parse(secret: string, text: string): SecretValue | null {
    if (isPlaceholder(text)) return null;
    const value = parseSecretText(text, { provider: this.name, secret });
    this.opts.redactor?.add(value.password);
    return value;
  }

  private error(action: string, secret: string, err: unknown): ProviderError {
    if (isAwsMarkedDeleted(err)) {
      return new ProviderError(
        `provider ${this.name}: secret ${secret} is scheduled for deletion; restore it with RestoreSecret or point the account at another secret`,
        {
          secret,
          cause: err,
        },
      );
    }
    const where = this.opts.endpoint ?? `region ${this.opts.region}`;
    return new ProviderError(
      `provider ${this.name}: ${action} on secret ${secret} failed: ${describeAwsError(err, action, where)}`,
      { secret, cause: err, permanent: isAwsAccessDenied(err) },
    );
  }
}

function versionWith(stages: VersionStages, stage: string): string | undefined {
  return Object.keys(stages).find((id) => stages[id]?.includes(stage));
}

/** The version labelled AWSPENDING that consumers do not read (not also AWSCURRENT). */
function pendingVersion(stages: VersionStages): string | undefined {
  return Object.keys(stages).find((id) => stages[id]?.includes(AWSPENDING) && !stages[id]?.includes(AWSCURRENT));
}

function isPlaceholder(text: string): boolean {
  if (!text.includes('pgrotatePlaceholder')) return false;
  try {
    const json = JSON.parse(text) as { pgrotatePlaceholder?: unknown; password?: unknown };
    return json.pgrotatePlaceholder === true && json.password === undefined;
  } catch {
    return false;
  }
}

/** Static credentials from `env` when it carries them; otherwise the SDK's default chain (IRSA, pod identity, profiles, IMDS). */
function staticCredentials(env: NodeJS.ProcessEnv | undefined): {
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
} {
  const accessKeyId = env?.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env?.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) return {};
  const sessionToken = env?.AWS_SESSION_TOKEN;
  return { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } };
}
