// Turning AWS SDK failures into short messages for people. The caller adds the provider, secret
// and action; these say what went wrong and what to check. AWS error messages never contain secret
// values, but every message still passes through the redactor before it is shown.

interface SdkErrorShape {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  $fault?: string;
}

const ACCESS_DENIED = new Set([
  'AccessDeniedException',
  'AccessDenied',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'ExpiredTokenException',
  'InvalidSignatureException',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/** Is this "the secret (or the requested version/label) does not exist"? */
export function isAwsNotFound(err: unknown): boolean {
  return (err as SdkErrorShape | null)?.name === 'ResourceNotFoundException';
}

/** Is this "the secret is marked for deletion" (AWS refuses most operations until RestoreSecret)? */
export function isAwsMarkedDeleted(err: unknown): boolean {
  const e = err as SdkErrorShape | null;
  return e?.name === 'InvalidRequestException' && /deleted|deletion/i.test(e.message ?? '');
}

/** Is this "the credentials in use may not do this" (a policy problem that retrying cannot fix)? */
export function isAwsAccessDenied(err: unknown): boolean {
  const e = (err ?? {}) as SdkErrorShape;
  return (e.name !== undefined && ACCESS_DENIED.has(e.name)) || e.$metadata?.httpStatusCode === 403;
}

/** A one-line description of an SDK failure of `action` against `where` (endpoint or region). */
export function describeAwsError(err: unknown, action: string, where: string): string {
  const e = (err ?? {}) as SdkErrorShape;
  const status = e.$metadata?.httpStatusCode;
  const attempts = e.$metadata?.attempts;
  const tries = attempts && attempts > 1 ? ` after ${attempts} attempts` : '';
  if ((e.name && ACCESS_DENIED.has(e.name)) || status === 403) {
    return `access denied (${e.name && ACCESS_DENIED.has(e.name) ? e.name : 'HTTP 403'}): the credentials in use need secretsmanager:${action} on this secret`;
  }
  const code = e.code ?? (e.name && NETWORK_CODES.has(e.name) ? e.name : undefined);
  if (code && NETWORK_CODES.has(code)) return `cannot reach Secrets Manager at ${where} (${code})${tries}`;
  if (e.name === 'TimeoutError' || e.name === 'RequestTimeout')
    return `no answer from Secrets Manager at ${where} (timeout)${tries}`;
  if (e.name === 'ThrottlingException' || status === 429)
    return `throttled by Secrets Manager${tries}; lower the concurrency or raise maxAttempts`;
  if (e.name === 'CredentialsProviderError')
    return `no AWS credentials found (${oneLine(e.message)}); set them through the SDK's default chain (IRSA, pod identity, environment, profile)`;
  if (e.name === 'SyntaxError' || !e.name)
    return `unexpected response${status ? ` (HTTP ${status})` : ''} from ${where}${tries}`;
  return `${e.name}${status ? ` (HTTP ${status})` : ''}: ${oneLine(e.message)}${tries}`;
}

function oneLine(text: string | undefined): string {
  return (text ?? '').split('\n')[0]?.slice(0, 300) ?? '';
}
