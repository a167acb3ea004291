import { ProviderError } from '../../src/core/errors.js';

// Vault/OpenBao KV v2 API paths for a secret name. A name is split on "/" and each segment is
// percent-encoded, so spaces and non-ASCII letters reach Vault as the same characters a person
// types in `bao kv get`. Segments that an HTTP stack would rewrite (".", "..", empty segments
// from "//" or a leading/trailing "/") and control characters are refused: they would silently
// address a different secret than the one configured.

/** Where pending values live by default: a prefix of its own in the same mount. */
export const DEFAULT_PENDING_PREFIX = 'pgrotate-pending';

// Control characters (C0, DEL, C1) never belong in a secret path.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Why `path` is not a usable slash-separated Vault path, or null when it is. */
export function vaultPathProblem(path: string): string | null {
  if (path.length === 0) return 'empty';
  if (CONTROL.test(path)) return 'contains a control character';
  for (const s of path.split('/')) {
    if (s === '') return 'empty path segment: no leading, trailing or double "/"';
    if (s === '.' || s === '..') return '"." and ".." segments are not allowed';
    if (s.trim() !== s) return 'a path segment starts or ends with whitespace';
  }
  return null;
}

/** Does `secret` lie under `pendingPrefix` (segment-wise), where pgrotate keeps pending values? */
export function underPendingPrefix(secret: string, pendingPrefix: string): boolean {
  const s = secret.split('/');
  return pendingPrefix.split('/').every((seg, i) => s[i] === seg);
}

/**
 * Why `secret` cannot be an account's (or admin's) secret name in a Vault provider with this
 * pending prefix, or null when it can. Checked at config load and again when a path is built.
 */
export function vaultSecretNameProblem(secret: string, pendingPrefix: string): string | null {
  const problem = vaultPathProblem(secret);
  if (problem) return `${JSON.stringify(secret)} is not a usable Vault path (${problem})`;
  if (underPendingPrefix(secret, pendingPrefix)) {
    return `${JSON.stringify(secret)} lies under the pending prefix ${JSON.stringify(pendingPrefix)}, which pgrotate reserves for pending values`;
  }
  return null;
}

/** Split and check a slash-separated path; `what` names it in errors ("secret", "mount"). */
export function pathSegments(path: string, what: string, where: { provider: string; secret?: string }): string[] {
  const problem = vaultPathProblem(path);
  if (problem) {
    throw new ProviderError(
      `provider ${where.provider}: ${what} ${JSON.stringify(path)} is not a usable Vault path (${problem})`,
      { secret: where.secret ?? path },
    );
  }
  return path.split('/');
}

/** Percent-encode each segment for the request URL. */
export function encodeSegments(segments: readonly string[]): string {
  return segments.map((s) => encodeURIComponent(s)).join('/');
}

/** The API paths (relative to /v1/) of one secret's current and pending locations. */
export interface KvPaths {
  /** What consumers read: <mount>/data/<secret>. */
  data: string;
  /** <mount>/metadata/<secret>: versions and custom metadata. */
  metadata: string;
  /** Pending value: <mount>/data/<pendingPrefix>/<secret>. */
  pendingData: string;
  pendingMetadata: string;
  /** The same paths unencoded, as written in a Vault policy (for error messages). */
  display: { data: string; metadata: string; pendingData: string; pendingMetadata: string };
}

/** Build the KV v2 paths of `secret` in `mount`, refusing names that fall under the pending prefix. */
export function kvPaths(mount: string, pendingPrefix: string, secret: string, provider: string): KvPaths {
  const m = pathSegments(mount, 'mount', { provider, secret });
  const p = pathSegments(pendingPrefix, 'pendingPrefix', { provider, secret });
  const s = pathSegments(secret, 'secret', { provider, secret });
  if (underPendingPrefix(secret, pendingPrefix)) {
    throw new ProviderError(
      `provider ${provider}: secret ${JSON.stringify(secret)} lies under the pending prefix ${JSON.stringify(pendingPrefix)}, which pgrotate reserves for pending values`,
      { secret },
    );
  }
  const mount_ = encodeSegments(m);
  const secret_ = encodeSegments(s);
  const pending_ = `${encodeSegments(p)}/${secret_}`;
  const dm = m.join('/');
  return {
    data: `${mount_}/data/${secret_}`,
    metadata: `${mount_}/metadata/${secret_}`,
    pendingData: `${mount_}/data/${pending_}`,
    pendingMetadata: `${mount_}/metadata/${pending_}`,
    display: {
      data: `${dm}/data/${secret}`,
      metadata: `${dm}/metadata/${secret}`,
      pendingData: `${dm}/data/${pendingPrefix}/${secret}`,
      pendingMetadata: `${dm}/metadata/${pendingPrefix}/${secret}`,
    },
  };
}
