import type { VaultProviderConfig } from './vault-config.js';
import { ConfigError, ProviderError } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logging/logger.js';
import type { Redactor } from '../../src/core/logging/redactor.js';
import { VaultAuth, type VaultAuthMethod } from './vault-auth.js';
import { VaultCallError, VaultClient } from './vault-client.js';
import {
  CasMismatch,
  explainVaultError,
  isPreflight,
  NotFound,
  vaultTokenGoneError,
  type VaultOp,
  type VaultWhere,
} from './vault-call-errors.js';
import { decodeKvData, kvMountProblem, type KvRead } from './vault-kv.js';
import { RotationMemory } from './vault-rotation-memory.js';
import { DEFAULT_PENDING_PREFIX, kvPaths, pathSegments, type KvPaths } from './vault-paths.js';
import { PendingConflictError } from '../../src/core/provider/pending-conflict-error.js';
import {
  secretPayload,
  type RotatedSecretValue,
  type SecretProvider,
  type SecretValue,
} from '../../src/core/provider/secret-provider.js';

// HashiCorp Vault / OpenBao, KV version 2.
//  - current:  <mount>/data/<secret>, latest version: exactly what applications read.
//  - pending:  <mount>/data/<pendingPrefix>/<secret> (default prefix "pgrotate-pending"), a path
//    consumers' policies do not cover. Removed with all its versions (metadata delete) once
//    promoted or discarded, so no unapplied password lingers in the store.
//  - previous: version N-1 of the current secret, which KV v2 keeps by itself.
// Promote writes the new current version with check-and-set on the version it read, so a
// concurrent writer makes the promote fail loudly instead of being overwritten; rotation facts
// (id, time) go to the secret's custom metadata when `rotationMetadata` is on.
//
// A warm rotation costs four calls: getCurrent (GET), stage (POST with cas 0), promote (POST
// with cas = the version getCurrent saw) and the pending's metadata DELETE. Stage writes first
// and reads only when the write is refused; promote writes the value the caller staged on the
// version this instance saw (see RotationMemory) and falls back to reading the store whenever
// either is missing or stale.

export interface VaultProviderOptions {
  name: string;
  address: string;
  mount: string;
  auth: VaultAuthMethod;
  namespace?: string | undefined;
  caFile?: string | undefined;
  pendingPrefix?: string | undefined;
  timeoutMs?: number | undefined;
  /** Also merge-patch pgrotate_rotation_id / pgrotate_rotated_at into the secret's custom metadata (a 5th call). */
  rotationMetadata?: boolean | undefined;
  redactor: Redactor;
  log: Logger;
}

/** Secret store on a Vault/OpenBao KV v2 mount. */
export class VaultProvider implements SecretProvider {
  readonly name: string;
  private readonly client: VaultClient;
  private readonly auth: VaultAuth;
  private readonly mount: string;
  private readonly pendingPrefix: string;
  private mountChecked: Promise<void> | null = null;
  private mountOk = false;
  private readonly memory = new RotationMemory();
  /** This provider as its error messages name it. */
  private readonly where: VaultWhere;

  constructor(private readonly opts: VaultProviderOptions) {
    this.name = opts.name;
    this.mount = opts.mount.replace(/\/+$/, '');
    this.pendingPrefix = (opts.pendingPrefix ?? DEFAULT_PENDING_PREFIX).replace(/^\/+|\/+$/g, '');
    this.where = {
      provider: opts.name,
      address: opts.address,
      namespace: opts.namespace,
      mount: this.mount,
      redactor: opts.redactor,
    };
    pathSegments(this.mount, 'mount', { provider: this.name });
    pathSegments(this.pendingPrefix, 'pendingPrefix', { provider: this.name });
    this.client = new VaultClient({
      address: opts.address,
      namespace: opts.namespace,
      caFile: opts.caFile,
      timeoutMs: opts.timeoutMs ?? 10_000,
      provider: opts.name,
    });
    this.auth = new VaultAuth(opts.auth, {
      client: this.client,
      redactor: opts.redactor,
      log: opts.log,
      provider: opts.name,
    });
    // Authenticate now and keep the token renewed from here on, not from the first call.
    this.auth.start();
  }

  /** Logins and token renewals so far. */
  get authCounters(): { logins: number; renewals: number } {
    return { ...this.auth.counters };
  }

  async getCurrent(secret: string): Promise<SecretValue | null> {
    const p = await this.paths(secret, 'read');
    const r = await this.readKv(p.data, p.display.data, secret);
    const value = r.data ? this.decode(r.data, secret) : null;
    const changed = r.createdTime ? new Date(r.createdTime) : null;
    if (value && changed && !Number.isNaN(changed.getTime())) value.lastChanged = changed;
    // The check-and-set version for this rotation's promote: a stale one only costs a re-read.
    this.memory.sawCurrent(secret, r.version);
    return value;
  }

  async getPending(secret: string): Promise<SecretValue | null> {
    const p = await this.paths(secret, 'read the pending value of');
    const r = await this.readKv(p.pendingData, p.display.pendingData, secret);
    return r.data ? this.decode(r.data, secret) : null;
  }

  async getPrevious(secret: string): Promise<SecretValue | null> {
    const p = await this.paths(secret, 'read the previous value of');
    const latest = await this.readKv(p.data, p.display.data, secret);
    if (latest.version <= 1) return null;
    const prior = await this.readKv(`${p.data}?version=${latest.version - 1}`, p.display.data, secret);
    return prior.data ? this.decode(prior.data, secret) : null;
  }

  async stagePending(secret: string, value: RotatedSecretValue): Promise<SecretValue> {
    const p = await this.paths(secret, 'stage a pending value for');
    this.opts.redactor.add(value.password);
    // Write first: cas 0 creates the pending path only if it does not exist, which it does not
    // once the last pending value was promoted or discarded (its metadata is deleted). Only a
    // refused write needs a read, to tell a retry of this rotation from another rotation's value.
    let cas = 0;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await this.write(p.pendingData, p.display.pendingData, secret, value, cas);
        return value;
      } catch (err) {
        if (!(err instanceof CasMismatch)) throw err;
      }
      const existing = await this.readKv(p.pendingData, p.display.pendingData, secret);
      if (existing.data) {
        const staged = this.decode(existing.data, secret);
        if (staged.rotationId !== value.rotationId) throw this.otherPending(secret, staged);
        return staged;
      }
      // Versions without a live latest one (deleted by hand): write on top of them.
      cas = existing.version;
    }
    throw new ProviderError(
      `provider ${this.name}: the pending path of secret ${secret} changed twice while rotation ${value.rotationId} staged its value; nothing was staged, run the rotation again`,
      { secret },
    );
  }

  async promotePending(secret: string, rotationId: string, staged?: SecretValue): Promise<void> {
    const p = await this.paths(secret, 'promote the pending value of');
    const currentVersion = this.memory.take(secret);
    if (staged?.rotationId === rotationId && currentVersion !== undefined) {
      // The caller holds the value it staged and this instance saw the current version: no read
      // is needed. If anyone wrote current since, check-and-set refuses and the store is read.
      try {
        await this.write(p.data, p.display.data, secret, staged, currentVersion);
      } catch (err) {
        if (!(err instanceof CasMismatch)) throw err;
        return this.promoteFromStore(p, secret, rotationId);
      }
      return this.finishPromote(p, secret, staged);
    }
    return this.promoteFromStore(p, secret, rotationId);
  }

  /** Promote from what the store holds now: a resumed rotation, or one whose remembered version is stale. */
  private async promoteFromStore(p: KvPaths, secret: string, rotationId: string): Promise<void> {
    const pendingRead = await this.readKv(p.pendingData, p.display.pendingData, secret);
    const pending = pendingRead.data ? this.decode(pendingRead.data, secret) : null;
    const current = await this.readKv(p.data, p.display.data, secret);
    if (current.data?.rotationId === rotationId) {
      // Promoted before (a retried step, or a crash before pending was removed).
      if (pending?.rotationId === rotationId) await this.deletePending(p, secret);
      return;
    }
    if (!pending || pending.rotationId !== rotationId) {
      throw new ProviderError(
        `provider ${this.name}: secret ${secret} has no pending value of rotation ${rotationId} to promote`,
        { secret },
      );
    }
    try {
      await this.write(p.data, p.display.data, secret, pending, current.version);
    } catch (err) {
      if (!(err instanceof CasMismatch)) throw err;
      throw new ProviderError(
        `provider ${this.name}: secret ${secret} was changed by another writer while rotation ${rotationId} promoted it (expected version ${current.version} at ${p.display.data}); nothing was overwritten, run the rotation again to resume`,
        { secret },
      );
    }
    await this.finishPromote(p, secret, pending);
  }

  /** After current holds the value: its rotation facts (opt-in), then the pending copy goes. */
  private async finishPromote(p: KvPaths, secret: string, value: SecretValue): Promise<void> {
    if (this.opts.rotationMetadata) await this.recordMetadata(p, secret, value);
    await this.deletePending(p, secret);
  }

  async discardPending(secret: string, rotationId: string): Promise<void> {
    const p = await this.paths(secret, 'discard the pending value of');
    this.memory.forget(secret);
    const r = await this.readKv(p.pendingData, p.display.pendingData, secret);
    if (!r.data || r.data.rotationId !== rotationId) return;
    await this.deletePending(p, secret);
  }

  async close(): Promise<void> {
    this.auth.close();
    this.client.close();
  }

  /** Paths of `secret`, after checking once that the mount is KV version 2. */
  private async paths(secret: string, verb: string): Promise<KvPaths> {
    const p = kvPaths(this.mount, this.pendingPrefix, secret, this.name);
    if (!this.mountOk) {
      try {
        await (this.mountChecked ??= this.checkMount(secret, verb));
      } catch {
        // Concurrent callers share one check; when it fails, each checks again on its own, so
        // the error it reports names its own secret rather than the first caller's.
        this.mountChecked = null;
        await this.checkMount(secret, verb);
      }
      this.mountOk = true;
    }
    return p;
  }

  /**
   * A KV version 1 mount would silently take "data/<secret>" as a key name, so its version is
   * checked before the first use. When the token may not see the mount's description the
   * check is skipped: the first real call then reports the missing permission or mount.
   */
  private async checkMount(secret: string, verb: string): Promise<void> {
    const path = `sys/internal/ui/mounts/${this.mount.split('/').map(encodeURIComponent).join('/')}`;
    let res: Record<string, unknown>;
    try {
      res = await this.send({ what: verb, method: 'GET', path, display: path, capability: 'read', secret });
    } catch (err) {
      if (err instanceof NotFound || (err instanceof ProviderError && /permission denied|not exist/.test(err.message)))
        return;
      throw err;
    }
    const problem = kvMountProblem(res.data, this.mount);
    if (problem)
      throw new ProviderError(`provider ${this.name}: mount ${this.mount} ${problem} (secret ${secret})`, { secret });
  }

  private async readKv(path: string, display: string, secret: string): Promise<KvRead> {
    try {
      const res = await this.send({ what: 'read', method: 'GET', path, display, capability: 'read', secret });
      const d = res.data as
        { data?: Record<string, unknown> | null; metadata?: { version?: number; created_time?: string } } | undefined;
      return { data: d?.data ?? null, version: d?.metadata?.version ?? 0, createdTime: d?.metadata?.created_time };
    } catch (err) {
      if (err instanceof NotFound) {
        // KV v2 answers 404 for a deleted latest version too, with that version's metadata.
        const d = (err.body as { data?: { metadata?: { version?: number } } } | undefined)?.data;
        return { data: null, version: d?.metadata?.version ?? 0 };
      }
      throw err;
    }
  }

  private async write(path: string, display: string, secret: string, value: SecretValue, cas: number): Promise<void> {
    const data = secretPayload(value);
    await this.send(
      { what: 'write', method: 'POST', path, display, capability: cas === 0 ? 'create' : 'update', secret },
      { options: { cas }, data },
    );
  }

  /** Non-secret rotation facts on the secret's metadata; informative only, so a failure is a warning. */
  private async recordMetadata(p: KvPaths, secret: string, value: SecretValue): Promise<void> {
    const custom_metadata = {
      pgrotate_rotation_id: value.rotationId ?? '',
      pgrotate_rotated_at: value.rotatedAt ?? new Date().toISOString(),
    };
    try {
      await this.send(
        {
          what: 'update the metadata of',
          method: 'PATCH',
          path: p.metadata,
          display: p.display.metadata,
          capability: 'patch',
          secret,
        },
        { custom_metadata },
        { 'Content-Type': 'application/merge-patch+json' },
      );
    } catch (err) {
      this.opts.log.warn(
        { provider: this.name, secret, error: err instanceof Error ? err.message : String(err) },
        'could not record rotation facts in the secret metadata',
      );
    }
  }

  /** Remove the pending value with all its versions, so its password is gone from the store. */
  private async deletePending(p: KvPaths, secret: string): Promise<void> {
    await this.send({
      what: 'delete the pending value of',
      method: 'DELETE',
      path: p.pendingMetadata,
      display: p.display.pendingMetadata,
      capability: 'delete',
      secret,
    });
  }

  /** Decode stored data (see decodeKvData), teaching the redactor its password. */
  private decode(data: Record<string, unknown>, secret: string): SecretValue {
    const value = decodeKvData(data, { provider: this.name, secret });
    this.opts.redactor.add(value.password);
    return value;
  }

  private otherPending(secret: string, existing: SecretValue): PendingConflictError {
    return new PendingConflictError(
      `provider ${this.name}: secret ${secret} already has a pending value of rotation ${existing.rotationId ?? '(unknown)'}`,
      existing,
      { secret },
    );
  }

  /** One authenticated call, with Vault's failures explained in terms of this secret. */
  private async send(op: VaultOp, body?: unknown, headers?: Record<string, string>): Promise<Record<string, unknown>> {
    for (let attempt = 0; ; attempt++) {
      let token: string;
      try {
        token = await this.auth.current();
      } catch (err) {
        throw err instanceof VaultCallError ? explainVaultError(err, op, this.where) : err;
      }
      try {
        return await this.client.send(op.method, op.path, { token, body, ...(headers ? { headers } : {}) });
      } catch (err) {
        if (!(err instanceof VaultCallError)) throw err;
        if (err.status === 403 && attempt === 0 && this.auth.canRelogin && !isPreflight(err)) {
          // The login token may have been revoked or expired early: log in once more.
          this.auth.invalidate(token);
          continue;
        }
        if (err.status === 403 && !isPreflight(err) && !this.auth.canRelogin && (await this.auth.isGone(token)))
          throw vaultTokenGoneError(op, this.where);
        throw explainVaultError(err, op, this.where);
      }
    }
  }
}

/** Build a VaultProvider from its config entry (no network I/O: it connects on first use). */
export function createVaultProvider(
  name: string,
  config: VaultProviderConfig,
  deps: { redactor: Redactor; log: Logger },
): VaultProvider {
  const auth = config.auth ?? (config.token ? { method: 'token' as const, token: config.token } : null);
  if (!auth)
    throw new ConfigError(
      `providers.${name}: a vault provider needs "token" or "auth" (method token, approle or kubernetes)`,
    );
  if (config.auth && config.token) throw new ConfigError(`providers.${name}: set either "token" or "auth", not both`);
  return new VaultProvider({
    name,
    address: config.address,
    mount: config.mount,
    auth,
    namespace: config.namespace,
    caFile: config.caFile,
    pendingPrefix: config.pendingPrefix,
    timeoutMs: config.timeout,
    rotationMetadata: config.rotationMetadata,
    redactor: deps.redactor,
    log: deps.log,
  });
}
