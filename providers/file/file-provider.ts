import { ProviderError } from '../../src/core/errors.js';
import { PendingConflictError } from '../../src/core/provider/pending-conflict-error.js';
import { groupCommitFor, type FileGroupCommit, type StoreBatch } from './file-group-commit.js';
import { FileStoreIoError, readJsonObject } from './file-store-io.js';
import {
  parseSecretObject,
  parseSecretText,
  secretPayload,
  type RotatedSecretValue,
  type SecretProvider,
  type SecretValue,
} from '../../src/core/provider/secret-provider.js';

// A JSON file as a secret store, for development and demos.
// `<path>` holds `{ "<secret>": <current value> }`: what applications read.
// `<path>.pgrotate.json` holds `{ "pending": {...}, "previous": {...} }`, apart from what consumers read.
// Both are replaced atomically (temp file + fsync + rename + fsync of the directory) with mode 0600,
// under a lock file so that several processes sharing one store cannot lose each other's updates.
// Concurrent updates in one process share one lock and one write per file (file-group-commit.ts).

export interface FileProviderOptions {
  name: string;
  path: string;
  /** How long to wait for another process's lock before failing. */
  lockTimeoutMs?: number;
}

/** Secret store backed by two JSON files. */
export class FileProvider implements SecretProvider {
  readonly name: string;
  private readonly path: string;
  private readonly sidecarPath: string;
  private readonly lockTimeoutMs: number;
  private readonly writer: FileGroupCommit;

  constructor(opts: FileProviderOptions) {
    this.name = opts.name;
    this.path = opts.path;
    this.sidecarPath = `${opts.path}.pgrotate.json`;
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 10_000;
    this.writer = groupCommitFor(opts.path);
  }

  async getCurrent(secret: string): Promise<SecretValue | null> {
    const main = await this.read(this.path, secret);
    return this.entry(main, secret);
  }

  async getPending(secret: string): Promise<SecretValue | null> {
    const side = await this.read(this.sidecarPath, secret);
    return this.entry(sub(side, 'pending'), secret);
  }

  async getPrevious(secret: string): Promise<SecretValue | null> {
    const side = await this.read(this.sidecarPath, secret);
    return this.entry(sub(side, 'previous'), secret);
  }

  async stagePending(secret: string, value: RotatedSecretValue): Promise<SecretValue> {
    return this.update(secret, false, (store) => {
      const existing = this.parsed(store.pendingOf(secret), secret);
      if (existing) {
        if (existing.rotationId === value.rotationId) return existing;
        throw new PendingConflictError(
          `provider ${this.name}: secret ${secret} already has a pending value of rotation ${existing.rotationId ?? '(unknown)'}`,
          existing,
          { secret },
        );
      }
      store.setPending(secret, secretPayload(value));
      return value;
    });
  }

  async promotePending(secret: string, rotationId: string): Promise<void> {
    await this.update(secret, true, (store) => {
      const current = this.parsed(store.current(secret), secret);
      const pending = this.parsed(store.pendingOf(secret), secret);
      if (current?.rotationId === rotationId) {
        if (pending?.rotationId === rotationId) store.dropPromotedPending(secret);
        return;
      }
      if (!pending || pending.rotationId !== rotationId) {
        throw new ProviderError(
          `provider ${this.name}: secret ${secret} has no pending value of rotation ${rotationId} to promote`,
          { secret },
        );
      }
      // Written as stored: the owned fields and the keys pgrotate keeps for the secret's owner.
      store.promote(secret, secretPayload(pending), current ? secretPayload(current) : undefined);
    });
  }

  async discardPending(secret: string, rotationId: string): Promise<void> {
    await this.update(secret, false, (store) => {
      if (this.parsed(store.pendingOf(secret), secret)?.rotationId !== rotationId) return;
      store.deletePending(secret);
    });
  }

  async close(): Promise<void> {}

  private parsed(raw: unknown, secret: string): SecretValue | null {
    if (raw === undefined) return null;
    const where = { provider: this.name, secret };
    // A person may have stored the credential as a JSON string rather than an object.
    return typeof raw === 'string' ? parseSecretText(raw, where) : parseSecretObject(raw, where);
  }

  private entry(map: Record<string, unknown>, secret: string): SecretValue | null {
    return Object.prototype.hasOwnProperty.call(map, secret) ? this.parsed(map[secret], secret) : null;
  }

  private async read(file: string, secret: string): Promise<Record<string, unknown>> {
    try {
      return await readJsonObject(file);
    } catch (err) {
      throw this.ioError(err, secret);
    }
  }

  private async update<T>(secret: string, late: boolean, apply: (store: StoreBatch) => T): Promise<T> {
    try {
      return await this.writer.update(secret, { late, lockTimeoutMs: this.lockTimeoutMs }, apply);
    } catch (err) {
      throw this.ioError(err, secret);
    }
  }

  /** A failed read, write or lock as an error naming the provider and the secret (never a value). */
  private ioError(err: unknown, secret: string): unknown {
    if (!(err instanceof FileStoreIoError)) return err;
    const opts = { secret, cause: err };
    switch (err.kind) {
      case 'read':
        return new ProviderError(
          `provider ${this.name}: cannot read ${err.file} for secret ${secret} (${err.code})`,
          opts,
        );
      case 'parse':
        return new ProviderError(`provider ${this.name}: ${err.file} is not a JSON object (secret ${secret})`, opts);
      case 'write':
        return new ProviderError(
          `provider ${this.name}: cannot write ${err.file} for secret ${secret} (${err.code})`,
          opts,
        );
      case 'lock':
        return new ProviderError(
          `provider ${this.name}: cannot lock ${this.path} for secret ${secret} (${err.code})`,
          opts,
        );
      case 'timeout':
        return new ProviderError(
          `provider ${this.name}: timed out waiting for the lock on ${this.path} (secret ${secret})`,
          opts,
        );
    }
  }
}

/** `side[key]` when it is an object (the sidecar's pending or previous map), else `{}`. */
function sub(side: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = side[key];
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
