// Checks of values that must be a PostgreSQL role or database name, or a host name. They run at
// config load so that a value that can never work (often a `file:` reference pointing at the
// wrong file) is refused before anything connects. PostgreSQL truncates a longer identifier to
// 63 bytes in its own error messages, which would carry a prefix of the value past the
// redactor, so the limit also keeps referenced values whole and therefore redactable.
// Every message describes the problem only: the value may be a secret and is never included.

/** PostgreSQL's NAMEDATALEN - 1: the longest identifier the server keeps whole. */
export const MAX_IDENTIFIER_BYTES = 63;
/** Longest host name (or Unix socket directory) accepted. */
export const MAX_HOST_BYTES = 255;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function controlProblem(value: string): string | null {
  if (value.includes('\u0000')) return 'contains a NUL character';
  if (/[\r\n]/.test(value)) return 'contains a line break';
  if (CONTROL.test(value)) return 'contains a control character';
  return null;
}

/** Why `value` cannot be a role or database name (`what` names it), or null when it can. */
export function identifierProblem(value: string, what: string): string | null {
  const control = controlProblem(value);
  if (control) return `not a usable ${what}: ${control}`;
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_IDENTIFIER_BYTES)
    return `not a usable ${what}: ${bytes} bytes, PostgreSQL allows at most ${MAX_IDENTIFIER_BYTES}`;
  return null;
}

/** Why `value` cannot be a host name or socket directory, or null when it can. */
export function hostProblem(value: string): string | null {
  const control = controlProblem(value);
  if (control) return `not a usable host name: ${control}`;
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_HOST_BYTES) return `not a usable host name: ${bytes} bytes, at most ${MAX_HOST_BYTES} allowed`;
  return null;
}

/**
 * Why a postgres:// URL cannot be used, or null. The URL parser silently drops tabs and line
 * breaks, so they are refused in the raw text; the user and database it names (percent-decoded)
 * must be usable identifiers.
 */
export function postgresUrlProblem(url: string): string | null {
  const control = controlProblem(url);
  if (control) return `not a usable postgres:// URL: ${control}`;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a valid postgres:// URL';
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return 'URL must start with postgres://';
  const decode = (s: string): string | null => {
    try {
      return decodeURIComponent(s);
    } catch {
      return null;
    }
  };
  const user = decode(u.username);
  const database = decode(u.pathname.replace(/^\//, ''));
  if (user === null || database === null) return 'not a usable postgres:// URL: invalid percent-encoding';
  const host = decode(u.hostname);
  return (
    (user && identifierProblem(user, 'user name in the URL')) ||
    (database && identifierProblem(database, 'database name in the URL')) ||
    (host && hostProblem(host)) ||
    null
  );
}
