import { readFile } from 'node:fs/promises';
import { ProviderError } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logging/logger.js';
import type { Redactor } from '../../src/core/logging/redactor.js';
import { VaultCallError, type VaultClient } from './vault-client.js';

// Obtains and keeps fresh the token every Vault call carries.
//  - token: a given token. Its TTL is looked up once; a renewable token is renewed (renew-self)
//    when two thirds of its TTL have passed, by a timer (so an idle long-running worker keeps it)
//    and again lazily before a call (timers do not fire while a machine sleeps).
//  - approle / kubernetes: log in, and log in again when two thirds of the token's TTL have
//    passed (by the same timer, and lazily) or when Vault rejects the token (it may have been
//    revoked). The Kubernetes service-account JWT is re-read from its file at every login: the
//    kubelet rotates it.
// Both start when the provider is built (start()), not at its first call: a worker whose first
// rotation comes after the token's TTL would otherwise find the token expired. The timer is
// unref'd and the start-up call is cut off by close(), so a short CLI command still exits at once.

export type VaultAuthMethod =
  | { method: 'token'; token: string }
  | { method: 'approle'; roleId: string; secretId: string; mount: string }
  | { method: 'kubernetes'; role: string; jwtFile: string; mount: string };

export interface VaultAuthDeps {
  client: VaultClient;
  redactor: Redactor;
  log: Logger;
  provider: string;
  /** Clock, replaceable for tests. */
  now?: () => number;
}

const RENEW_FRACTION = 2 / 3;

/** Token source with renewal and re-login. */
export class VaultAuth {
  private token: string | null = null;
  /** When to renew or log in again (epoch ms); null when the token does not expire. */
  private renewAt: number | null = null;
  private renewable = false;
  private inFlight: Promise<string> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** The last token a login returned and the last service-account JWT read (forgotten when replaced). */
  private loginToken: string | null = null;
  private jwt: string | null = null;
  /** Logins and renewals so far (reported in debug logs and read by tests). */
  readonly counters = { logins: 0, renewals: 0 };

  constructor(
    private readonly method: VaultAuthMethod,
    private readonly deps: VaultAuthDeps,
  ) {
    if (method.method === 'token') deps.redactor.add(method.token);
    if (method.method === 'approle') {
      deps.redactor.add(method.secretId);
      deps.redactor.add(method.roleId);
    }
  }

  /** Whether a rejected token can be replaced by logging in again. */
  get canRelogin(): boolean {
    return this.method.method !== 'token';
  }

  /**
   * Look the token up (or log in) now and schedule its renewal, without waiting: a failure here
   * is only logged, since the first call tries again and reports it in terms of its secret.
   */
  start(): void {
    if (this.closed || this.inFlight) return;
    this.refresh().catch((err: unknown) => {
      if (this.closed) return;
      this.deps.log.debug(
        {
          provider: this.deps.provider,
          error: this.deps.redactor.scrub(err instanceof Error ? err.message : String(err)),
        },
        'vault authentication at start-up failed; the first call tries again',
      );
    });
  }

  /**
   * After Vault refused `token` a call: whether the token itself is gone (expired, revoked or
   * unknown) rather than lacking a capability. Vault and OpenBao answer both with HTTP 403; a
   * token that is gone cannot even look itself up, and that refusal is the bare "permission
   * denied" (an ACL refusal of a live token comes wrapped as "1 error occurred: ...").
   */
  async isGone(token: string): Promise<boolean> {
    try {
      await this.deps.client.send('GET', 'auth/token/lookup-self', { token });
      return false;
    } catch (err) {
      if (!(err instanceof VaultCallError) || err.status !== 403) return false;
      return err.errors.some((e) => /^\s*permission denied\s*$|invalid token|bad token|token (is )?expired/i.test(e));
    }
  }

  /** A token that is valid now (renewing or logging in first when due). */
  async current(): Promise<string> {
    if (this.token !== null && (this.renewAt === null || this.now() < this.renewAt)) return this.token;
    return this.refresh();
  }

  /** Forget the token after Vault rejected it, so the next call logs in again. */
  invalidate(rejected: string): void {
    if (this.token === rejected && this.canRelogin) {
      this.token = null;
      this.renewAt = null;
    }
  }

  /** Stop the renewal timer. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  private refresh(): Promise<string> {
    if (!this.inFlight) {
      this.inFlight = this.obtain().finally(() => {
        this.inFlight = null;
      });
    }
    return this.inFlight;
  }

  private async obtain(): Promise<string> {
    const m = this.method;
    if (m.method === 'token') {
      if (this.token === null) {
        // Until a lookup succeeds (or is refused) the token stays unset, so a lookup that failed
        // on the network is tried again by the next call.
        await this.lookupSelf(m.token);
        this.token = m.token;
      } else if (this.renewable) {
        await this.renewSelf(this.token);
      } else {
        this.renewAt = null;
      }
      return this.token;
    }
    const body =
      m.method === 'approle'
        ? { role_id: m.roleId, secret_id: m.secretId }
        : { role: m.role, jwt: await this.readJwt(m.jwtFile) };
    const path = `auth/${m.mount.split('/').map(encodeURIComponent).join('/')}/login`;
    let res: Record<string, unknown>;
    try {
      res = await this.deps.client.send('POST', path, { body });
    } catch (err) {
      throw this.loginError(err, path);
    }
    const auth = res.auth as { client_token?: string; lease_duration?: number; renewable?: boolean } | undefined;
    if (!auth?.client_token)
      throw new ProviderError(`provider ${this.deps.provider}: ${m.method} login at ${path} returned no token`);
    // The token outlives the rotation that happened to log in: keep it, and forget the one it
    // replaces so a worker that logs in again every hour for months does not collect them.
    this.deps.redactor.keep(auth.client_token);
    if (this.loginToken !== null && this.loginToken !== auth.client_token) this.deps.redactor.remove(this.loginToken);
    this.loginToken = auth.client_token;
    this.counters.logins++;
    this.setToken(auth.client_token, auth.lease_duration ?? 0, false);
    this.deps.log.debug(
      { provider: this.deps.provider, method: m.method, ttlSeconds: auth.lease_duration },
      'vault login',
    );
    return auth.client_token;
  }

  private async lookupSelf(token: string): Promise<void> {
    try {
      const res = await this.deps.client.send('GET', 'auth/token/lookup-self', { token });
      const data = res.data as { ttl?: number; renewable?: boolean } | undefined;
      this.setToken(token, data?.ttl ?? 0, data?.renewable ?? false);
    } catch (err) {
      // A token without the default policy may not look itself up; it is used as it is and
      // the first real call reports what it may not do.
      if (err instanceof VaultCallError && err.status === 403) {
        this.token = token;
        this.renewAt = null;
        return;
      }
      throw err;
    }
  }

  private async renewSelf(token: string): Promise<void> {
    try {
      const res = await this.deps.client.send('POST', 'auth/token/renew-self', { token, body: {} });
      const auth = res.auth as { lease_duration?: number; renewable?: boolean } | undefined;
      this.counters.renewals++;
      this.setToken(token, auth?.lease_duration ?? 0, auth?.renewable ?? false);
      this.deps.log.debug({ provider: this.deps.provider, ttlSeconds: auth?.lease_duration }, 'vault token renewed');
    } catch (err) {
      // Keep using the token until it really expires; the failing call will then say why.
      this.renewAt = null;
      this.deps.log.warn(
        {
          provider: this.deps.provider,
          error: this.deps.redactor.scrub(err instanceof Error ? err.message : String(err)),
        },
        'vault token renewal failed',
      );
    }
  }

  private setToken(token: string, ttlSeconds: number, renewable: boolean): void {
    this.token = token;
    this.renewable = renewable;
    this.renewAt = ttlSeconds > 0 ? this.now() + ttlSeconds * 1000 * RENEW_FRACTION : null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // A given token that cannot be renewed needs no timer: nothing can extend it.
    if (this.renewAt !== null && (this.method.method !== 'token' || renewable) && !this.closed) {
      this.timer = setTimeout(
        () => {
          this.timer = null;
          this.refresh().catch(() => undefined);
        },
        Math.max(1000, this.renewAt - this.now()),
      );
      this.timer.unref();
    }
  }

  private async readJwt(file: string): Promise<string> {
    let jwt: string;
    try {
      jwt = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new ProviderError(
        `provider ${this.deps.provider}: cannot read the Kubernetes service-account token ${file} (${code})`,
      );
    }
    this.deps.redactor.keep(jwt);
    if (this.jwt !== null && this.jwt !== jwt) this.deps.redactor.remove(this.jwt);
    this.jwt = jwt;
    return jwt;
  }

  private loginError(err: unknown, path: string): ProviderError {
    const m = this.method.method;
    // The role is not a secret and is what an operator must check (its bindings, its audience).
    const who = this.method.method === 'kubernetes' ? `${m} login (role ${this.method.role})` : `${m} login`;
    if (err instanceof VaultCallError && err.status !== null) {
      const detail = this.deps.redactor.scrub(err.errors.join('; ') || `HTTP ${err.status}`);
      // A refused login (bad credentials, an expired or unbound token) does not fix itself on a
      // retry seconds later; a 5xx or 429 may.
      return new ProviderError(
        `provider ${this.deps.provider}: ${who} at ${path} was refused (HTTP ${err.status}: ${detail})`,
        { permanent: err.status >= 400 && err.status < 500 && err.status !== 429 },
      );
    }
    const code = err instanceof VaultCallError ? err.code : 'error';
    return new ProviderError(
      `provider ${this.deps.provider}: cannot reach Vault at ${this.deps.client.opts.address} to log in (${code})`,
    );
  }
}
