import { chownSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

// PgBouncer's auth_file: one `"username" "password-or-verifier"` line per user, a `"` inside a
// field written as `""`. pgrotate rewrites only the line of the role it rotates; comments,
// other users and their order stay as they were.

/** A field of the file: quoted, inner quotes doubled. */
function quoteField(value: string): string {
  return `"${value.replaceAll('"', '""')}"`;
}

/** The username a line is for, or null (a comment, a blank or a malformed line). */
export function authFileLineUser(line: string): string | null {
  const m = /^\s*"((?:[^"]|"")*)"/.exec(line);
  return m ? (m[1] as string).replaceAll('""', '"') : null;
}

/** The secret field of `user`'s line (a SCRAM verifier, an md5 hash or a password), or null. */
export function authFileEntry(text: string, user: string): string | null {
  for (const line of text.split('\n')) {
    if (authFileLineUser(line) !== user) continue;
    const m = /^\s*"(?:[^"]|"")*"\s+"((?:[^"]|"")*)"/.exec(line);
    return m ? (m[1] as string).replaceAll('""', '"') : null;
  }
  return null;
}

/**
 * The file's text with `user`'s line set to `secret` (replaced where it stands, appended when
 * absent), or removed when `secret` is null. Every other line is kept byte for byte.
 */
export function withAuthFileEntry(text: string, user: string, secret: string | null): string {
  const lines = text.length === 0 ? [] : text.split('\n');
  const trailingNewline = text.endsWith('\n');
  if (trailingNewline) lines.pop();
  const entry = secret === null ? null : `${quoteField(user)} ${quoteField(secret)}`;
  const out: string[] = [];
  let placed = false;
  for (const line of lines) {
    if (authFileLineUser(line) !== user) {
      out.push(line);
    } else if (!placed && entry !== null) {
      out.push(entry);
      placed = true;
    }
    // A second line for the same user is dropped: PgBouncer would read only one of them.
  }
  if (!placed && entry !== null) out.push(entry);
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/**
 * Set (or with null remove) `user`'s line in the file at `path`, atomically: the new text is
 * written to a temporary file beside it (same mode and, as root, owner), flushed, and renamed
 * over the old one, so PgBouncer reads either the old file or the new one, never half of one.
 * Idempotent: returns false, writing nothing, when the line is already as asked.
 */
export function rewriteAuthFile(path: string, user: string, secret: string | null): boolean {
  const before = readFileSync(path, 'utf8');
  const after = withAuthFileEntry(before, user, secret);
  if (after === before) return false;
  const st = statSync(path);
  const tmp = join(dirname(path), `.${basename(path)}.pgrotate-${process.pid}`);
  const fd = openSync(tmp, 'w', st.mode & 0o7777);
  try {
    writeSync(fd, after);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (process.getuid?.() === 0) chownSync(tmp, st.uid, st.gid);
  renameSync(tmp, path);
  // The rename itself is made durable, so a crash right after cannot bring the old file back.
  const dirFd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return true;
}
