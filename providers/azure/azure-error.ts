import { ProviderError, messageOf } from '../../src/core/errors.js';

// Turning Azure Key Vault failures into short messages for people. A 403 names the permission the
// failed request needed, in both of Key Vault's permission models (RBAC data action and access
// policy), because the provider knows which operation it attempted; Azure's own message is only
// partly helpful (RBAC puts the action on a later line, access policies name it in prose).

/** The secret operations pgrotate performs, named as Key Vault access policies name them. */
export type AzureSecretOperation = 'get' | 'list' | 'set' | 'delete' | 'recover' | 'purge';

const RBAC_DATA_ACTION: Record<AzureSecretOperation, string> = {
  get: 'Microsoft.KeyVault/vaults/secrets/getSecret/action',
  list: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action',
  set: 'Microsoft.KeyVault/vaults/secrets/setSecret/action',
  delete: 'Microsoft.KeyVault/vaults/secrets/delete',
  recover: 'Microsoft.KeyVault/vaults/secrets/recover/action',
  purge: 'Microsoft.KeyVault/vaults/secrets/purge/action',
};

/** The identity lacks the permission for one secret operation (HTTP 403 that is not SecretDisabled). */
export class AzureAccessDeniedError extends ProviderError {
  readonly operation: AzureSecretOperation;
  constructor(message: string, opts: { secret: string; operation: AzureSecretOperation }) {
    super(message, { secret: opts.secret });
    this.operation = opts.operation;
  }
  /** A missing permission does not grant itself: the job fails at once (read by the PgrotateError constructor). */
  static readonly permanentByDefault = true;
}

/** The secret's latest version exists but cannot be read: it is disabled (Azure: 403 SecretDisabled). */
export class AzureSecretDisabledError extends ProviderError {
  /** A person must enable or replace the version (read by the PgrotateError constructor). */
  static readonly permanentByDefault = true;
}

/** HTTP status of an SDK error, if it has one. */
export function azureStatusOf(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** The error's code and, when Azure sent one, its inner code (e.g. Forbidden / ForbiddenByRbac). */
export function azureCodesOf(err: unknown): string[] {
  const e = err as {
    code?: unknown;
    details?: { error?: { code?: unknown; innerError?: { code?: unknown } | null } };
  } | null;
  const codes = [e?.code, e?.details?.error?.code, e?.details?.error?.innerError?.code].filter(
    (c): c is string => typeof c === 'string' && c !== '',
  );
  return [...new Set(codes)];
}

/** Azure's answer to a read of a disabled version: 403 with inner code SecretDisabled. */
export function isAzureSecretDisabled(err: unknown): boolean {
  return azureStatusOf(err) === 403 && azureCodesOf(err).includes('SecretDisabled');
}

/** What the identity needs for `operation`, in both permission models. */
export function azurePermissionHint(operation: AzureSecretOperation): string {
  return `the identity lacks the "${operation}" secret permission (Azure RBAC data action ${RBAC_DATA_ACTION[operation]}; access policy secret permission ${operation[0]?.toUpperCase()}${operation.slice(1)})`;
}

/** A one-line reason for a failed `operation` (status, codes, and for 403 the missing permission). */
export function describeAzureFailure(err: unknown, operation: AzureSecretOperation): string {
  const status = azureStatusOf(err);
  const codes = azureCodesOf(err).join('/');
  const tag = status !== undefined ? `HTTP ${status}${codes ? ` ${codes}` : ''}` : codes || 'request failed';
  if (status === 403) return `access denied (${tag}): ${azurePermissionHint(operation)}`;
  if (status === 401) return `not authenticated (${tag})`;
  return tag;
}

/**
 * The error for a failed `operation` on `secret`: AzureSecretDisabledError for 403 SecretDisabled,
 * AzureAccessDeniedError (naming the missing permission) for any other 403, else ProviderError.
 * `where` says what was attempted; only the first line of the SDK's message is kept, scrubbed.
 */
export function azureFailureError(
  where: string,
  secret: string,
  err: unknown,
  operation: AzureSecretOperation,
  scrub: (text: string) => string,
): ProviderError {
  if (isAzureSecretDisabled(err)) {
    return new AzureSecretDisabledError(
      `${where}: its latest version is disabled (HTTP 403 SecretDisabled), so applications cannot read it either; pgrotate does not rotate over a credential it cannot read. Enable the version (or set a readable one), then retry`,
      { secret },
    );
  }
  const detail = scrub(messageOf(err).split(/\r?\n/)[0] ?? '').slice(0, 300);
  const message = `${where}: ${describeAzureFailure(err, operation)}${detail ? `: ${detail}` : ''}`;
  if (azureStatusOf(err) === 403) return new AzureAccessDeniedError(message, { secret, operation });
  return new ProviderError(message, { secret });
}
