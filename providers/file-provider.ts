import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ProviderError } from '../src/errors.js';
import { parseSecretObject, parseSecretText, secretPayload, type RotatedSecretValue, type SecretProvider, type SecretValue } from './secret-provider.js';

// A JSON file as a secret store, for development and demos.
// `<path>` holds `{ "<secret>": <current value> }`: what applications read.
// `<path>.pgrotate.json` holds pending and previous values, apart from what consumers read.
// Both are written atomically (temp file + fsync + rename) with mode 0600, under a lock file
// so that several processes sharing one store cannot lose each other's updates.

export interface FileProviderOptions {
  name: string;
  path: string;
  /** How long to wait for another process's lock before failing. */
  lockTimeoutMs?: number;
}

interface Sidecar {
  pending: Record<string, SecretValue>;
  previous: Record<string, SecretValue>;
}

const inProcessQueues = new Map<string, Promise<unknown>>();

/** Secret store backed by two JSON files. */
export class FileProvider implements SecretProvider {
  readonly name: string;
  private readonly path: string;
  private readonly sidecarPath: string;
  private readonly lockPath: string;
  private readonly lockTimeoutMs: number;

  constructor(opts: FileProviderOptions) {
    this.name = opts.name;
    this.path = opts.path;
    this.sidecarPath = `${opts.path}.pgrotate.json`;
    this.lockPath = `${opts.path}.lock`;
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 10_000;
  }

  async getCurrent(secret: string): Promise<SecretValue | null> {
    const main = await this.readJson(this.path, secret);
    return this.entry(main, secret);
  }

  async getPending(secret: string): Promise<SecretValue | null> {
    const side = await this.readSidecar(secret);
    return this.entry(side.pending, secret);
  }

  async getPrevious(secret: string): Promise<SecretValue | null> {
    const side = await this.readSidecar(secret);
    return this.entry(side.previous, secret);
  }

  async stagePending(secret: string, value: RotatedSecretValue): Promise<SecretValue> {
    return this.locked(secret, async () => {
      const side = await this.readSidecar(secret);
      const existing = this.entry(side.pending, secret);
      if (existing) {
        if (existing.rotationId === value.rotationId) return existing;
        throw new ProviderError(`provider ${this.name}: secret ${secret} already has a pending value of rotation ${existing.rotationId ?? '(unknown)'}`, { secret });
      }
      side.pending[secret] = secretPayload(value);
      await this.writeJson(this.sidecarPath, side, secret);
      return value;
    });
  }

  async promotePending(secret: string, rotationId: string): Promise<void> {
    await this.locked(secret, async () => {
      const main = await this.readJson(this.path, secret);
      const side = await this.readSidecar(secret);
      const current = this.entry(main, secret);
      const pending = this.entry(side.pending, secret);
      if (current?.rotationId === rotationId) {
        if (pending?.rotationId === rotationId) {
          delete side.pending[secret];
          await this.writeJson(this.sidecarPath, side, secret);
        }
        return;
      }
      if (!pending || pending.rotationId !== rotationId) {
        throw new ProviderError(`provider ${this.name}: secret ${secret} has no pending value of rotation ${rotationId} to promote`, { secret });
      }
      // Order matters for crash safety: previous first, then current, then drop pending.
      if (current) {
        side.previous[secret] = current;
        await this.writeJson(this.sidecarPath, side, secret);
      }
      main[secret] = pending;
      await this.writeJson(this.path, main, secret);
      delete side.pending[secret];
      await this.writeJson(this.sidecarPath, side, secret);
    });
  }

  async discardPending(secret: string, rotationId: string): Promise<void> {
    await this.locked(secret, async () => {
      const side = await this.readSidecar(secret);
      if (this.entry(side.pending, secret)?.rotationId !== rotationId) return;
      delete side.pending[secret];
      await this.writeJson(this.sidecarPath, side, secret);
    });
  }

  async close(): Promise<void> {}

  private entry(map: Record<string, unknown>, secret: string): SecretValue | null {
    if (!Object.prototype.hasOwnProperty.call(map, secret)) return null;
    const raw = map[secret];
    const where = { provider: this.name, secret };
    // A person may have stored the credential as a JSON string rather than an object.
    return typeof raw === 'string' ? parseSecretText(raw, where) : parseSecretObject(raw, where);
  }

  private async readSidecar(secret: string): Promise<Sidecar> {
    const raw = await this.readJson(this.sidecarPath, secret);
    return {
      pending: (raw.pending as Record<string, SecretValue> | undefined) ?? {},
      previous: (raw.previous as Record<string, SecretValue> | undefined) ?? {},
    };
  }

  private async readJson(file: string, secret: string): Promise<Record<string, unknown>> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return {};
      throw new ProviderError(`provider ${this.name}: cannot read ${file} for secret ${secret} (${code ?? 'error'})`, { secret });
    }
    if (text.trim() === '') return {};
    try {
      const json: unknown = JSON.parse(text);
      if (json && typeof json === 'object' && !Array.isArray(json)) return json as Record<string, unknown>;
    } catch {
      // fall through to the error below
    }
    throw new ProviderError(`provider ${this.name}: ${file} is not a JSON object (secret ${secret})`, { secret });
  }

  // Asynchronous I/O throughout: a blocking fsync would stall every other rotation in the process.
  private async writeJson(file: string, data: unknown, secret: string): Promise<void> {
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(data, null, 2)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
      await syncDirectory(dirname(file));
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new ProviderError(`provider ${this.name}: cannot write ${file} for secret ${secret} (${code})`, { secret });
    }
  }

  /** Serialise updates: in-process by a promise chain per file, across processes by a lock file. */
  private async locked<T>(secret: string, fn: () => Promise<T>): Promise<T> {
    const previous = inProcessQueues.get(this.path) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(async () => {
      await this.acquireFileLock(secret);
      try {
        return await fn();
      } finally {
        await unlink(this.lockPath).catch(() => undefined);
      }
    });
    inProcessQueues.set(this.path, run);
    try {
      return await run;
    } finally {
      if (inProcessQueues.get(this.path) === run) inProcessQueues.delete(this.path);
    }
  }

  private async acquireFileLock(secret: string): Promise<void> {
    const deadline = Date.now() + this.lockTimeoutMs;
    for (;;) {
      try {
        const fh = await open(this.lockPath, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
        await fh.writeFile(String(process.pid));
        await fh.close();
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST') {
          throw new ProviderError(`provider ${this.name}: cannot lock ${this.path} for secret ${secret} (${code ?? 'error'})`, { secret });
        }
      }
      await this.breakStaleLock();
      if (Date.now() > deadline) {
        throw new ProviderError(`provider ${this.name}: timed out waiting for the lock on ${this.path} (secret ${secret})`, { secret });
      }
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
    }
  }

  /** A lock whose owner process is gone (killed mid-write) is removed. */
  private async breakStaleLock(): Promise<void> {
    try {
      const pid = Number(await readFile(this.lockPath, 'utf8'));
      const info = await stat(this.lockPath);
      if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) await unlink(this.lockPath);
      else if (!Number.isInteger(pid) && Date.now() - info.mtimeMs > 5_000) await unlink(this.lockPath);
    } catch {
      // raced with the owner releasing it
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
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
