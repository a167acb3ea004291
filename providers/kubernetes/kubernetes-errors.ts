import { ProviderError } from '../../src/core/errors.js';
import type { Redactor } from '../../src/core/logging/redactor.js';

// What a failed API call means for the operator. The API server's own message (for a 403 it names
// the user, verb, resource and namespace) is kept, scrubbed; response bodies never carry Secret
// data for these statuses, and every message passes the redactor anyway.

/** Someone else changed the Secret between pgrotate's read and its write (409 on resourceVersion). */
export class ConcurrentWriteError extends ProviderError {}

/** One API call, for messages. */
export interface KubeCall {
  provider: string;
  /** The RBAC verb: get, create, update. */
  verb: 'get' | 'create' | 'update';
  namespace: string;
  /** The Secret's name (the account's or its companion). */
  name: string;
  /** The account's secret, for the error's `secret`. */
  secret: string;
}

/** The HTTP status of a client-node ApiException, or undefined (network error). */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The API server's Status message of a failed call, when it sent one. */
function statusMessage(err: unknown): string | undefined {
  let body = (err as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body) as unknown;
    } catch {
      return undefined;
    }
  }
  const message = (body as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : undefined;
}

/** The error for a failed call, naming provider, verb, namespace and Secret; 401/403/404 are permanent. */
export function kubeError(call: KubeCall, err: unknown, redactor: Redactor | undefined): ProviderError {
  const status = statusOf(err);
  const what = `${call.verb} Secret ${call.namespace}/${call.name}`;
  const detail = redactor?.scrub(statusMessage(err) ?? '') ?? '';
  const said = detail ? `: ${detail}` : '';
  const at = `provider ${call.provider}`;
  const opts = { secret: call.secret, cause: err };
  if (status === 403) {
    return new ProviderError(
      `${at}: may not ${what} (403 Forbidden${said}); pgrotate's Role needs get, create, update and patch on secrets in namespace ${call.namespace}`,
      { ...opts, permanent: true },
    );
  }
  if (status === 401) {
    return new ProviderError(
      `${at}: the API server refused pgrotate's credentials on ${what} (401 Unauthorized): check the ServiceAccount token or kubeconfig`,
      { ...opts, permanent: true },
    );
  }
  if (status === 404) {
    return new ProviderError(
      `${at}: cannot ${what}: namespace ${call.namespace} does not exist (404 Not Found${said})`,
      {
        ...opts,
        permanent: true,
      },
    );
  }
  if (status === 409) {
    return new ConcurrentWriteError(
      `${at}: ${what} was refused: another writer changed it at the same time (409 Conflict); nothing was overwritten, retry the rotation`,
      opts,
    );
  }
  if (status === undefined) {
    const message = redactor?.scrub((err as Error)?.message ?? String(err)) ?? '';
    return new ProviderError(`${at}: cannot ${what}: the API server did not answer (${message})`, opts);
  }
  return new ProviderError(`${at}: ${what} failed (HTTP ${status}${said})`, opts);
}
