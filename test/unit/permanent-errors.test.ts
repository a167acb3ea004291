import { describe, expect, it } from 'vitest';
import { isAwsAccessDenied } from '../../providers/aws/aws-error.js';
import {
  AdminPrivilegeError,
  ConfigError,
  FenceLostError,
  LoginPathClosedError,
  PgrotateError,
  ProviderError,
  RoleCannotLoginError,
  RoleExpiredError,
  RoleNotFoundError,
  RotationInProgressError,
  SecretFormatError,
  StateStoreError,
  SuperuserRefusedError,
  TargetUnreachableError,
  UnknownAccountError,
  VerifyFailedError,
  isPermanentError,
} from '../../src/core/errors.js';

// Issue 13, defect 2: which failures retrying cannot fix. Permanent ones fail a job at once;
// everything else keeps its retries.

describe('permanent vs transient errors', () => {
  it('a missing role, a superuser, NOLOGIN, an expired role, a closed login path, a missing privilege, a config or secret-format error are permanent', () => {
    for (const E of [
      RoleNotFoundError,
      SuperuserRefusedError,
      RoleCannotLoginError,
      RoleExpiredError,
      LoginPathClosedError,
      AdminPrivilegeError,
      ConfigError,
      UnknownAccountError,
      SecretFormatError,
    ]) {
      const err = new E('x');
      expect(err.permanent, E.name).toBe(true);
      expect(isPermanentError(err), E.name).toBe(true);
    }
  });

  it('unreachable targets, provider faults, lost fences, busy accounts, failed verifies and unknown errors are transient', () => {
    for (const E of [
      TargetUnreachableError,
      ProviderError,
      FenceLostError,
      RotationInProgressError,
      VerifyFailedError,
      StateStoreError,
      PgrotateError,
    ]) {
      expect(isPermanentError(new E('x')), E.name).toBe(false);
    }
    expect(isPermanentError(new Error('ECONNRESET'))).toBe(false);
    expect(isPermanentError('a string')).toBe(false);
    expect(isPermanentError(null)).toBe(false);
  });

  it("a provider's 403 is permanent, also when the engine wraps it in another error", () => {
    const denied = new ProviderError('permission denied', { secret: 'pg/app', permanent: true });
    expect(isPermanentError(denied)).toBe(true);
    const wrapped = new ProviderError('account app: could not stage …', { secret: 'pg/app', cause: denied });
    expect(wrapped.permanent).toBe(false);
    expect(isPermanentError(wrapped)).toBe(true);
    const sealed = new ProviderError('Vault is sealed', { cause: new ProviderError('HTTP 503') });
    expect(isPermanentError(sealed)).toBe(false);
  });

  it('AWS access denied (by name or HTTP 403) is permanent; throttling and 5xx are not', () => {
    expect(isAwsAccessDenied({ name: 'AccessDeniedException' })).toBe(true);
    expect(isAwsAccessDenied({ name: 'Whatever', $metadata: { httpStatusCode: 403 } })).toBe(true);
    expect(isAwsAccessDenied({ name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } })).toBe(false);
    expect(isAwsAccessDenied({ name: 'InternalServiceError', $metadata: { httpStatusCode: 500 } })).toBe(false);
    expect(isAwsAccessDenied(undefined)).toBe(false);
  });
});

describe('Azure refusals', () => {
  it('a missing permission (403) and a disabled latest version are permanent', async () => {
    const { AzureAccessDeniedError, AzureSecretDisabledError } = await import('../../providers/azure/azure-error.js');
    expect(isPermanentError(new AzureAccessDeniedError('denied', { secret: 's', operation: 'get' }))).toBe(true);
    expect(isPermanentError(new AzureSecretDisabledError('disabled', { secret: 's' }))).toBe(true);
  });
});
