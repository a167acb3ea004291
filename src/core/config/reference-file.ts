import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { ConfigError } from '../errors.js';

// Reading the file a `file:/path` config value names. Such a file holds one secret or name (a
// Kubernetes secret key, a Docker secret), so it must be a regular file of at most 64 KiB:
// /dev/zero, /dev/urandom, a FIFO or a directory would otherwise hang the process or grow it
// until it is killed. The file is opened without blocking (a FIFO would wait for a writer),
// then checked with fstat on the open descriptor, so it cannot be swapped between check and read.
// Errors name the key and the path, never what the file holds.

/** Largest file a `file:` reference may name. */
export const MAX_REFERENCE_FILE_BYTES = 64 * 1024;

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** The contents of `file` for the config key `key`, with one trailing newline removed. */
export function readReferenceFile(file: string, key: string): string {
  const limit = `a file: reference must name a regular file of at most ${MAX_REFERENCE_FILE_BYTES / 1024} KiB`;
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`${key}: cannot read file ${file} (${code})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ConfigError(`${key}: file ${file} is ${kindOf(st)}; ${limit}`);
    if (st.size > MAX_REFERENCE_FILE_BYTES) throw new ConfigError(`${key}: file ${file} is ${st.size} bytes; ${limit}`);
    // Read at most one byte past the limit: a file that grew after fstat is refused too.
    const buf = Buffer.alloc(MAX_REFERENCE_FILE_BYTES + 1);
    let used = 0;
    for (;;) {
      const n = readSync(fd, buf, used, buf.length - used, null);
      if (n === 0) break;
      used += n;
      if (used > MAX_REFERENCE_FILE_BYTES)
        throw new ConfigError(`${key}: file ${file} is larger than ${MAX_REFERENCE_FILE_BYTES} bytes; ${limit}`);
    }
    return buf
      .subarray(0, used)
      .toString('utf8')
      .replace(/\r?\n$/, '');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`${key}: cannot read file ${file} (${code})`);
  } finally {
    closeSync(fd);
  }
}
