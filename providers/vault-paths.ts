import { ProviderError } from '../src/errors.js';

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

/** Split and check a slash-separated path; `what` names it in errors ("secret", "mount"). */
export function pathSegments(path: string, what: string, where: { provider: string; secret?: string }): string[] {
  const fail = (why: string): never => {
    throw new ProviderError(`provider ${where.provider}: ${what} ${JSON.stringify(path)} is not a usable Vault path (${why})`, { secret: where.secret ?? path });
  };
  if (path.length === 0) fail('empty');
  if (CONTROL.test(path)) fail('contains a control character');
  const segments = path.split('/');
  for (const s of segments) {
    if (s === '') fail('empty path segment: no leading, trailing or double "/"');
    if (s === '.' || s === '..') fail('"." and ".." segments are not allowed');
    if (s.trim() !== s) fail('a path segment starts or ends with whitespace');
  }
  return segments;
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
  if (p.every((seg, i) => s[i] === seg)) {
    throw new ProviderError(`provider ${provider}: secret ${JSON.stringify(secret)} lies under the pending prefix ${JSON.stringify(pendingPrefix)}, which pgrotate reserves for pending values`, { secret });
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
