import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ConfigError } from '../errors.js';

// How large a config file may be. YAML parsing takes tens of times the file's size in memory
// (a 50 MB YAML file grew the process past 1.8 GB), so YAML is capped low and refused before
// parsing; JSON (which is YAML, and what generated fleet configs use) is read with JSON.parse
// and may be much larger. Any file is read with a hard cap, so `--config /dev/zero` fails fast.

/** Largest YAML config accepted; larger configs must be JSON. */
export const MAX_YAML_CONFIG_BYTES = 2 * 1024 * 1024;
/** Largest config accepted at all (JSON). */
export const MAX_CONFIG_BYTES = 64 * 1024 * 1024;

/** The error for YAML beyond MAX_YAML_CONFIG_BYTES; it recommends JSON. */
export function yamlTooLargeError(source: string, bytes: number): ConfigError {
  return new ConfigError(
    `${source}: config is ${bytes} bytes of YAML; YAML configs are limited to ${MAX_YAML_CONFIG_BYTES / 1024 / 1024} MiB ` +
      `because the YAML parser needs tens of times that in memory. Write a large config as JSON (JSON is YAML; ` +
      `a file starting with "{" is read as JSON, up to ${MAX_CONFIG_BYTES / 1024 / 1024} MiB)`,
  );
}

/** Does the file start (after whitespace) with "{", i.e. may it be JSON? Reads only its beginning. */
function mayBeJson(fd: number): boolean {
  const head = Buffer.alloc(4096);
  const n = readSync(fd, head, 0, head.length, 0);
  return /^\uFEFF?\s*\{/.test(head.subarray(0, n).toString('utf8'));
}

function tooLarge(path: string, what: string): ConfigError {
  return new ConfigError(
    `config file ${path} is ${what}; the limit is ${MAX_CONFIG_BYTES / 1024 / 1024} MiB (JSON) and ${MAX_YAML_CONFIG_BYTES / 1024 / 1024} MiB (YAML)`,
  );
}

/** The bytes of the config file at `path`, refusing one beyond MAX_CONFIG_BYTES without reading it all. */
export function readConfigBytes(path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`cannot read config file ${path} (${code})`);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new ConfigError(`cannot read config file ${path} (EISDIR)`);
    if (st.isFile() && st.size > MAX_CONFIG_BYTES) throw tooLarge(path, `${st.size} bytes`);
    // A large file that cannot be JSON is refused before it is read.
    if (st.isFile() && st.size > MAX_YAML_CONFIG_BYTES && !mayBeJson(fd)) throw yamlTooLargeError(path, st.size);
    // Pipes and devices (--config /dev/stdin, <(…)) have no size: read them up to the cap.
    const chunks: Buffer[] = [];
    let total = 0;
    const chunkSize = st.isFile() ? Math.min(Math.max(st.size, 1) + 1, MAX_CONFIG_BYTES + 1) : 1024 * 1024;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(chunkSize, MAX_CONFIG_BYTES + 1 - total));
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > MAX_CONFIG_BYTES) throw tooLarge(path, `larger than ${MAX_CONFIG_BYTES} bytes`);
    }
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`cannot read config file ${path} (${code})`);
  } finally {
    closeSync(fd);
  }
}
