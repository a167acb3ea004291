import { describe, expect, it } from 'vitest';
import {
  AzureAccessDeniedError,
  AzureSecretDisabledError,
  azureFailureError,
  describeAzureFailure,
} from '../../providers/azure/azure-error.js';
import { ProviderError } from '../../src/core/errors.js';

// How the Azure provider words Key Vault failures. These are the answers Lowkey Vault cannot give
// (it has no authorization, and answers a disabled version with 404): errors shaped as
// @azure/keyvault-secrets 4.11 throws them (RestError: statusCode, code, and `details` holding the
// deserialized Key Vault error, inner code included).

function sdkError(statusCode: number, code: string, inner: string | null, message: string): Error {
  return Object.assign(new Error(message), {
    name: 'RestError',
    statusCode,
    code,
    details: { error: { code, message, innerError: inner ? { code: inner } : undefined } },
  });
}

const where = 'provider az: cannot read secret pg-app in vault https://v.vault.azure.net';
const keep = (t: string) => t;

describe('azure error mapping', () => {
  it('403 SecretDisabled (what Azure answers for a disabled latest version) is a disabled-secret error, not "access denied"', () => {
    const err = azureFailureError(
      where,
      'pg-app',
      sdkError(403, 'Forbidden', 'SecretDisabled', 'Operation get is not allowed on a disabled secret.'),
      'get',
      keep,
    );
    expect(err).toBeInstanceOf(AzureSecretDisabledError);
    expect(err.message).toMatch(/pg-app.*latest version is disabled \(HTTP 403 SecretDisabled\)/);
    expect(err.message).not.toMatch(/access denied/);
    expect(err.secret).toBe('pg-app');
  });

  it.each([
    ['get', 'Microsoft.KeyVault/vaults/secrets/getSecret/action', 'Get'],
    ['list', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action', 'List'],
    ['set', 'Microsoft.KeyVault/vaults/secrets/setSecret/action', 'Set'],
    ['delete', 'Microsoft.KeyVault/vaults/secrets/delete', 'Delete'],
    ['recover', 'Microsoft.KeyVault/vaults/secrets/recover/action', 'Recover'],
    ['purge', 'Microsoft.KeyVault/vaults/secrets/purge/action', 'Purge'],
  ] as const)('403 without "%s" names that permission in both models', (operation, action, policy) => {
    const rbac = sdkError(
      403,
      'Forbidden',
      'ForbiddenByRbac',
      `Caller is not authorized to perform action on resource.\r\nAction: '${action}'`,
    );
    const err = azureFailureError(where, 'pg-app', rbac, operation, keep);
    expect(err).toBeInstanceOf(AzureAccessDeniedError);
    expect((err as AzureAccessDeniedError).operation).toBe(operation);
    expect(err.message).toContain(
      `access denied (HTTP 403 Forbidden/ForbiddenByRbac): the identity lacks the "${operation}" secret permission (Azure RBAC data action ${action}; access policy secret permission ${policy})`,
    );
    expect(err.message).toContain('pg-app');
    // Only the first line of Azure's message is kept.
    expect(err.message).not.toContain('\n');
  });

  it('an access-policy 403 (inner code AccessDenied) is also access denied', () => {
    const policy = sdkError(
      403,
      'Forbidden',
      'AccessDenied',
      "The user, group or application 'appid=x' does not have secrets set permission on key vault 'v;location=westeurope'.",
    );
    expect(azureFailureError(where, 'pg-app', policy, 'set', keep)).toBeInstanceOf(AzureAccessDeniedError);
  });

  it('other failures keep status and code; the detail passes through the scrubber', () => {
    const err = azureFailureError(where, 'pg-app', sdkError(500, 'InternalError', null, 'boom hunter2'), 'get', (t) =>
      t.replace('hunter2', '[redacted]'),
    );
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).not.toBeInstanceOf(AzureAccessDeniedError);
    expect(err.message).toBe(`${where}: HTTP 500 InternalError: boom [redacted]`);
    expect(describeAzureFailure(new Error('socket hang up'), 'get')).toBe('request failed');
    expect(describeAzureFailure(sdkError(401, 'Unauthorized', null, 'x'), 'get')).toBe(
      'not authenticated (HTTP 401 Unauthorized)',
    );
  });
});
