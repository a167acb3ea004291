import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

// The file provider's durable I/O: whole-file JSON reads, and writes that a crash can never tear
// (temp file + fsync + rename + fsync of the directory). Errors carry what failed and the errno
// code only; the provider turns them into messages that name the secret.

/** What a file store operation could not do: `read`, `parse`, `write`, `lock` or `timeout`. */
export class FileStoreIoError extends Error {
  constructor(
    readonly kind: 'read' | 'parse' | 'write' | 'lock' | 'timeout',
    readonly file: string,
    readonly code: string,
  ) {
    super(`${kind} ${file} (${code})`);
    this.name = 'FileStoreIoError';
  }
}

/** A temp file this module writes next to `file`; the lock holder removes orphans of dead writers. */
export function tempPrefix(file: string): string {
  return `${basename(file)}.tmp-`;
}

/** The JSON object in `file`; `{}` when it does not exist or is empty. */
export async function readJsonObject(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return {};
    throw new FileStoreIoError('read', file, code ?? 'error');
  }
  if (text.trim() === '') return {};
  try {
    const json: unknown = JSON.parse(text);
    if (json && typeof json === 'object' && !Array.isArray(json)) return json as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw new FileStoreIoError('parse', file, 'not a JSON object');
}

/** A temp file holding the next content of `file`, written and fsynced but not yet in place. */
export interface PreparedWrite {
  file: string;
  tmp: string;
}

/**
 * Write `data` to a new temp file (mode 0600) next to `file` and fsync it. Nothing a reader sees
 * changes until `commitPrepared`. Several prepares may run at once: their fsyncs overlap.
 */
export async function prepareJsonWrite(file: string, data: unknown): Promise<PreparedWrite> {
  const tmp = `${dirname(file)}/${tempPrefix(file)}${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(data, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return { file, tmp };
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw new FileStoreIoError('write', file, (err as NodeJS.ErrnoException).code ?? 'error');
  }
}

/** Put a prepared temp file in place atomically and make the rename durable (fsync of the directory). */
export async function commitPrepared(w: PreparedWrite): Promise<void> {
  try {
    await rename(w.tmp, w.file);
  } catch (err) {
    await unlink(w.tmp).catch(() => undefined);
    throw new FileStoreIoError('write', w.file, (err as NodeJS.ErrnoException).code ?? 'error');
  }
  await syncDirectory(dirname(w.file));
}

/** Remove prepared temp files that will not be committed (an earlier step failed). */
export async function abandonPrepared(writes: PreparedWrite[]): Promise<void> {
  await Promise.all(writes.map((w) => unlink(w.tmp).catch(() => undefined)));
}

async function syncDirectory(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // some filesystems refuse fsync on directories; the rename is still atomic
  }
}
