import type { Agent } from 'node:https';
import type { TokenCredential } from '@azure/identity';
import {
  SecretClient,
  type KeyVaultSecret,
  type SecretClientOptions,
  type SecretProperties,
  type SetSecretOptions,
} from '@azure/keyvault-secrets';
import type { AzureProviderConfig } from './azure-config.js';
import { ProviderError } from '../../src/core/errors.js';
import { AzureSoftDeleteWriter } from './azure-soft-delete.js';
import { PendingConflictError } from '../../src/core/provider/pending-conflict-error.js';
import type { Redactor } from '../../src/core/logging/redactor.js';
import { azureCaAgent, azureClientOptions } from './azure-client-options.js';
import { createAzureCredential } from './azure-credential.js';
import {
  AzureSecretDisabledError,
  azureFailureError,
  azureStatusOf,
  type AzureSecretOperation,
} from './azure-error.js';
import { azurePendingName, azureSecretNameProblem } from './azure-secret-name.js';
import {
  parseSecretText,
  secretPayload,
  type RotatedSecretValue,
  type SecretProvider,
  type SecretValue,
} from '../../src/core/provider/secret-provider.js';

// Azure Key Vault as a secret store.
//
// Every new version of an Azure secret is at once the one consumers read (getSecret without a
// version), so the pending credential cannot be a new version of the secret itself. It lives in a
// companion secret `<secret>-pgrotate-pending` that applications never read. Promote writes the
// pending JSON as the secret's new version and deletes the companion; older versions stay as
// history and the one before the latest is *previous*.
//
// Crash safety of promote: the latest version's `rotationId` tag is compared first, so a rerun after
// a crash between "new version written" and "companion deleted" only finishes the deletion.
// Soft delete: a deleted companion lingers as "deleted but recoverable", and Azure refuses to set a
// secret of that name (409 Conflict). Staging then purges it (or, where purging is not allowed,
// recovers it) and tries again, so a leftover never blocks a rotation (azure-soft-delete.ts).
//
// A secret whose latest version cannot be read (disabled: Azure answers 403 SecretDisabled) is an
// error, never "no current value": rotating over it would replace a credential nobody can see,
// and the applications reading it are already failing. Some emulators (Lowkey Vault) answer 404
// instead, so a 404 is confirmed against the secret's version list before it counts as missing.

const CONTENT_TYPE = 'application/json';
const TAG_MANAGED_BY = 'managedBy';
const TAG_ROTATION_ID = 'rotationId';
const TAG_ROTATED_AT = 'rotatedAt';
const TAG_NEXT_DUE = 'nextDueAt';
const TAG_PENDING_FOR = 'pendingFor';

export interface AzureKeyVaultProviderOptions {
  name: string;
  vaultUrl: string;
  credential: TokenCredential;
  /** PEM file of a CA to trust in addition to the system's (test servers, private endpoints). */
  caFile?: string | undefined;
  /** Accept an auth challenge whose resource is not a *.vault.azure.net domain (emulators). */
  disableChallengeResourceVerification?: boolean | undefined;
  redactor?: Redactor | undefined;
  /** Retries of a request that failed in transit or with 429/5xx; default 3. */
  maxRetries?: number | undefined;
  /** How long to keep retrying a name that is still being deleted or purged (409); default 30 s. */
  conflictTimeoutMs?: number | undefined;
}

/** Secret store backed by one Azure Key Vault. */
export class AzureKeyVaultProvider implements SecretProvider {
  readonly name: string;
  private readonly opts: AzureKeyVaultProviderOptions;
  private clientInstance: SecretClient | null = null;
  private purgeClientInstance: SecretClient | null = null;
  private agent: Agent | null = null;
  /** setSecret over soft-deleted names (see azure-soft-delete.ts). */
  private readonly writer: AzureSoftDeleteWriter;

  constructor(opts: AzureKeyVaultProviderOptions) {
    this.name = opts.name;
    this.opts = opts;
    this.writer = new AzureSoftDeleteWriter({
      client: () => this.client(),
      purgeClient: () => this.purgeClient(),
      failure: (what, secret, err, operation) => this.failure(what, secret, err, operation),
      conflictTimeoutMs: opts.conflictTimeoutMs ?? 30_000,
    });
  }

  async getCurrent(secret: string): Promise<SecretValue | null> {
    this.checkName(secret);
    const found = await this.fetchCurrent(secret);
    if (!found) return null;
    const value = this.parse(found, secret);
    if (found.properties.updatedOn) value.lastChanged = found.properties.updatedOn;
    return value;
  }

  async getPending(secret: string): Promise<SecretValue | null> {
    this.checkName(secret);
    const pending = await this.fetch(azurePendingName(secret), 'read the pending value of', secret);
    if (!pending) return null;
    const value = this.parse(pending, secret);
    // A companion left behind by a promote that crashed before deleting it (or brought back by a
    // recovery) holds what is already current: it is not pending any more.
    const current = await this.fetchCurrent(secret);
    if (current && value.rotationId && rotationIdOf(current) === value.rotationId) return null;
    return value;
  }

  async getPrevious(secret: string): Promise<SecretValue | null> {
    this.checkName(secret);
    const versions: SecretProperties[] = [];
    try {
      for await (const props of this.client().listPropertiesOfSecretVersions(secret)) {
        if (props.enabled !== false) versions.push(props);
      }
    } catch (err) {
      if (azureStatusOf(err) === 404) return null;
      throw this.failure('list the versions of', secret, err, 'list');
    }
    // Newest first. Azure's timestamps have one-second resolution, so versions written within the
    // same second are ordered by the rotatedAt tag pgrotate writes (millisecond ISO time).
    versions.sort(
      (a, b) =>
        (b.createdOn?.getTime() ?? 0) - (a.createdOn?.getTime() ?? 0) ||
        (b.tags?.[TAG_ROTATED_AT] ?? '').localeCompare(a.tags?.[TAG_ROTATED_AT] ?? ''),
    );
    const previous = versions[1];
    if (!previous?.version) return null;
    let found: KeyVaultSecret;
    try {
      found = await this.client().getSecret(secret, { version: previous.version });
    } catch (err) {
      if (azureStatusOf(err) === 404) return null;
      throw this.failure('read the previous version of', secret, err, 'get');
    }
    return this.parse(found, secret);
  }

  async stagePending(secret: string, value: RotatedSecretValue): Promise<SecretValue> {
    this.checkName(secret);
    const existing = await this.getPending(secret);
    if (existing) {
      if (existing.rotationId === value.rotationId) return existing;
      throw new PendingConflictError(
        `provider ${this.name}: secret ${secret} already has a pending value of rotation ${existing.rotationId ?? '(unknown)'}`,
        existing,
        { secret },
      );
    }
    const { nextDueAt, ...staged } = value;
    this.opts.redactor?.add(value.password);
    const tags: Record<string, string> = {
      [TAG_MANAGED_BY]: 'pgrotate',
      [TAG_ROTATION_ID]: value.rotationId,
      [TAG_ROTATED_AT]: value.rotatedAt,
      [TAG_PENDING_FOR]: secret,
    };
    if (nextDueAt) tags[TAG_NEXT_DUE] = nextDueAt;
    await this.writer.write(
      azurePendingName(secret),
      JSON.stringify(secretPayload(staged)),
      { contentType: CONTENT_TYPE, tags },
      secret,
      'purge',
    );
    return staged;
  }

  async promotePending(secret: string, rotationId: string): Promise<void> {
    this.checkName(secret);
    const current = await this.fetchCurrent(secret);
    if (current && rotationIdOf(current) === rotationId) {
      // Already promoted (a rerun after a crash): only the companion may still need removing.
      await this.deleteCompanion(secret, rotationId);
      return;
    }
    const pending = await this.fetch(azurePendingName(secret), 'read the pending value of', secret);
    const value = pending ? this.parse(pending, secret) : null;
    if (!pending || !value || value.rotationId !== rotationId) {
      throw new ProviderError(
        `provider ${this.name}: secret ${secret} has no pending value of rotation ${rotationId} to promote`,
        { secret },
      );
    }
    const tags: Record<string, string> = { [TAG_MANAGED_BY]: 'pgrotate', [TAG_ROTATION_ID]: rotationId };
    if (value.rotatedAt) tags[TAG_ROTATED_AT] = value.rotatedAt;
    const options: SetSecretOptions = {
      contentType: CONTENT_TYPE,
      tags,
      ...expiryOption(pending.properties.tags?.[TAG_NEXT_DUE]),
    };
    // The application's secret itself: a soft-deleted one is recovered (its history kept), not purged.
    await this.writer.write(secret, pending.value ?? '', options, secret, 'recover');
    await this.deleteCompanion(secret, rotationId);
  }

  async discardPending(secret: string, rotationId: string): Promise<void> {
    this.checkName(secret);
    const pending = await this.fetch(azurePendingName(secret), 'read the pending value of', secret);
    if (!pending || rotationIdOf(pending) !== rotationId) return;
    await this.deleteCompanion(secret, rotationId);
  }

  async close(): Promise<void> {
    this.clientInstance = null;
    this.purgeClientInstance = null;
    this.agent?.destroy();
    this.agent = null;
  }

  /** The SDK client, built on first use so that creating the provider does no I/O. */
  private client(): SecretClient {
    if (this.clientInstance) return this.clientInstance;
    this.clientInstance = new SecretClient(this.opts.vaultUrl, this.opts.credential, this.clientOptions());
    return this.clientInstance;
  }

  /**
   * A client that sends a purge once and never retries it. A vault that may not purge (purge
   * protection; Lowkey Vault answers 500 where Azure answers 403) would otherwise have the SDK
   * retry a refusal that cannot change with 0.4 + 0.8 + 1.6 s of back-off on every stage: that was
   * the azure bench's second run at 3.2 rotations/s against 26.9 in its first.
   */
  private purgeClient(): SecretClient {
    if (this.purgeClientInstance) return this.purgeClientInstance;
    const options = this.clientOptions();
    options.retryOptions = { maxRetries: 0 };
    this.purgeClientInstance = new SecretClient(this.opts.vaultUrl, this.opts.credential, options);
    return this.purgeClientInstance;
  }

  /** The latest version of `name`, or null when it does not exist (or is deleted). */
  private async fetch(name: string, what: string, secret = name): Promise<KeyVaultSecret | null> {
    try {
      return await this.client().getSecret(name);
    } catch (err) {
      if (azureStatusOf(err) === 404) return null;
      throw this.failure(what, secret, err, 'get');
    }
  }

  /**
   * The latest version of the application's secret, or null when the secret does not exist (or is
   * soft-deleted). A latest version that exists but cannot be read is an AzureSecretDisabledError.
   */
  private async fetchCurrent(secret: string): Promise<KeyVaultSecret | null> {
    const found = await this.fetch(secret, 'read');
    if (found) return found;
    // 404 from Azure means "no such secret". Lowkey Vault also answers 404 (NotFoundException,
    // "Operation get is not allowed on a disabled entity") for a disabled latest version, where
    // Azure answers 403 SecretDisabled. Versions that exist settle it.
    const versions: SecretProperties[] = [];
    try {
      for await (const props of this.client().listPropertiesOfSecretVersions(secret)) versions.push(props);
    } catch (err) {
      if (azureStatusOf(err) === 404) return null;
      throw this.failure('list the versions of', secret, err, 'list');
    }
    if (versions.length === 0) return null;
    const newest = Math.max(...versions.map((v) => v.createdOn?.getTime() ?? 0));
    const latest = versions.filter((v) => (v.createdOn?.getTime() ?? 0) === newest);
    const disabled = latest.find((v) => v.enabled === false);
    const why = disabled
      ? `its latest version${disabled.version ? ` ${disabled.version}` : ''} is disabled, so applications cannot read it either`
      : `its latest version cannot be read (HTTP 404, yet the secret has ${versions.length} version${versions.length === 1 ? '' : 's'})`;
    throw new AzureSecretDisabledError(
      `provider ${this.name}: secret ${secret} in vault ${this.opts.vaultUrl}: ${why}; pgrotate does not rotate over a credential it cannot read. Enable the version (or set a readable one), then retry`,
      { secret },
    );
  }

  /** Options shared by both clients (one keep-alive agent between them, built on first use). */
  private clientOptions(): SecretClientOptions {
    if (!this.agent && this.opts.caFile) this.agent = azureCaAgent(this.name, this.opts.caFile);
    return azureClientOptions(this.opts, this.agent);
  }

  /** Delete the pending companion if it (still) belongs to `rotationId`. */
  private async deleteCompanion(secret: string, rotationId: string): Promise<void> {
    const name = azurePendingName(secret);
    const pending = await this.fetch(name, 'read the pending value of', secret);
    if (!pending || rotationIdOf(pending) !== rotationId) return;
    try {
      // Starts the deletion; waiting for it to finish is not needed: a later stage that finds the
      // name still deleting or soft-deleted purges or recovers it first.
      await this.client().beginDeleteSecret(name, { intervalInMs: 250 });
    } catch (err) {
      if (azureStatusOf(err) === 404) return;
      throw this.failure('delete the pending value of', secret, err, 'delete');
    }
  }

  private parse(found: KeyVaultSecret, secret: string): SecretValue {
    const value = parseSecretText(found.value ?? '', { provider: this.name, secret });
    this.opts.redactor?.add(value.password);
    return value;
  }

  private checkName(secret: string): void {
    const problem = azureSecretNameProblem(secret, true);
    if (problem) throw new ProviderError(`provider ${this.name}: ${problem}`, { secret });
  }

  /** A ProviderError for a failed `operation`, scrubbed; the cause is never attached (it holds the request body). */
  private failure(what: string, secret: string, err: unknown, operation: AzureSecretOperation): ProviderError {
    const scrub = (text: string) => (this.opts.redactor ? this.opts.redactor.scrub(text) : text);
    return azureFailureError(
      `provider ${this.name}: cannot ${what} secret ${secret} in vault ${this.opts.vaultUrl}`,
      secret,
      err,
      operation,
      scrub,
    );
  }
}

function rotationIdOf(found: KeyVaultSecret): string | undefined {
  const tagged = found.properties.tags?.[TAG_ROTATION_ID];
  if (tagged) return tagged;
  try {
    const json = JSON.parse(found.value ?? '') as { rotationId?: unknown };
    return typeof json.rotationId === 'string' ? json.rotationId : undefined;
  } catch {
    return undefined;
  }
}

function expiryOption(nextDueAt: string | undefined): { expiresOn?: Date } {
  if (!nextDueAt) return {};
  const at = new Date(nextDueAt);
  return Number.isNaN(at.getTime()) ? {} : { expiresOn: at };
}

/** Build the provider from its config entry (no network I/O: the client connects on first use). */
export function createAzureKeyVaultProvider(
  name: string,
  config: AzureProviderConfig,
  deps: { redactor: Redactor },
): AzureKeyVaultProvider {
  return new AzureKeyVaultProvider({
    name,
    vaultUrl: config.vaultUrl,
    credential: createAzureCredential(config.credential, deps.redactor),
    caFile: config.caFile,
    disableChallengeResourceVerification: config.disableChallengeResourceVerification,
    redactor: deps.redactor,
  });
}
