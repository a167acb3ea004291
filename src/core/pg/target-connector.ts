import type { EventEmitter } from 'node:events';
import pg from 'pg';
import type { TargetConfig } from '../config/config-schema.js';
import type { PgbouncerConfig } from '../config/target-config-schema.js';
import { TargetUnreachableError, messageOf } from '../errors.js';
import type { Redactor } from '../logging/redactor.js';
import { clientConfig, type Endpoint } from './connection-options.js';
import type { LoginResult } from './login-result.js';
import { probeLoginPathOf, type LoginPathProbe } from './login-path-probe.js';
import { CredentialPool } from './credential-pool.js';
import type { LiveCredential } from './live-credential.js';
import { ResilientClient } from './resilient-client.js';

export type { LoginResult } from './login-result.js';
export type { LoginPathProbe } from './login-path-probe.js';

/** A probe's answer, and whether it was an earlier probe's (see TargetConnector.probeLoginPath). */
export type LoginPathAnswer = LoginPathProbe & { reused?: true };

/** How long an open probe result of a role on a target may serve that role's later rotations. */
export const DEFAULT_PROBE_REUSE_MS = 10_000;
/** Above this many remembered probes, expired ones are swept on the next probe. */
const PROBE_SWEEP_AT = 1000;

/** Credentials of a target's admin login, resolved from config or from a provider. */
export interface AdminCredentials {
  username: string;
  password: string;
  /** Set when the admin login's password comes from a provider and pgrotate may rotate it. */
  credential?: LiveCredential;
}

/**
 * node-postgres refuses SCRAM iteration counts above this by default (`scramMaxIterations`);
 * pgrotate raises its own limit to the configured count so its verify login can check them.
 */
export const DEFAULT_CLIENT_SCRAM_MAX_ITERATIONS = 100_000;

/**
 * Classify a failed login. PostgreSQL checks the password (PerformAuthentication) before the
 * per-role and per-database connection limits (InitializeSessionUserId, CheckMyDatabase), so
 * "too many connections for role" after the exchange proves that the password was accepted.
 * "sorry, too many clients already" (max_connections) is raised before authentication and
 * proves nothing.
 */
export function classifyLoginError(err: unknown, message: string): LoginResult {
  const code = (err as { code?: string }).code;
  if (code === '53300' && /too many connections for role/.test(message))
    return { ok: true, proof: 'role-connection-limit', message };
  if (code === '53300' && /too many connections for database/.test(message))
    return { ok: true, proof: 'database-connection-limit', message };
  if (code === '28P01') return { ok: false, authFailure: true, refusal: 'password', message };
  if (code === '28000') return { ok: false, authFailure: true, refusal: 'host', message };
  return { ok: false, authFailure: false, refusal: 'fault', message };
}

export interface TargetConnectorOptions {
  targets: Record<string, TargetConfig>;
  resolveAdmin: (targetName: string, target: TargetConfig) => Promise<AdminCredentials>;
  redactor: Redactor;
  /** Admin connections kept per target; also caps concurrent admin statements per database. */
  poolSize?: number;
  /** The SCRAM iteration count pgrotate writes; its own logins must accept verifiers that strong. */
  scramIterations?: number;
  /** How long an open login-path probe may be reused for the same role and target (ms; 0: never). */
  probeReuseMs?: number;
}

/** Admin connection pools and test logins for the configured targets. */
/** The server messages that ask a client for a password (node-postgres's event names). */
const PASSWORD_REQUESTS = ['authenticationCleartextPassword', 'authenticationMD5Password', 'authenticationSASL'];

export class TargetConnector {
  private readonly pools = new Map<string, Promise<pg.Pool>>();
  /** Probes by target and role, with when each started (performance.now()); only open ones are reused. */
  private readonly probes = new Map<string, { startedAt: number; answer: Promise<LoginPathProbe> }>();
  /** Backend pids of this connector's own logins whose goodbye is still under way, by target and role. */
  private readonly closingLogins = new Map<string, Set<number>>();

  constructor(private readonly opts: TargetConnectorOptions) {}

  /** Where a target is, for connections and for the host/port/dbname written into secrets. */
  endpoint(targetName: string): Endpoint {
    const t = this.target(targetName);
    return {
      host: t.host,
      port: t.port,
      database: t.database,
      sslmode: t.sslmode,
      caFile: t.caFile,
      connectTimeoutMs: t.connectTimeout,
    };
  }

  /** The PgBouncer instances applications reach the target through (none by default). */
  pgbouncers(targetName: string): PgbouncerConfig[] {
    return this.target(targetName).pgbouncer ?? [];
  }

  /** The host applications use (publicHost, else host). */
  publicHost(targetName: string): string {
    const t = this.target(targetName);
    return t.publicHost ?? t.host;
  }

  /** Run `fn` on an admin connection of the target; connection failures name the target and account. */
  async withAdmin<T>(
    targetName: string,
    account: string | undefined,
    fn: (client: pg.PoolClient) => Promise<T>,
  ): Promise<T> {
    const pool = await this.pool(targetName, account);
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      const t = this.target(targetName);
      throw new TargetUnreachableError(
        `${account ? `account ${account}: ` : ''}target ${targetName} (${t.host}:${t.port}/${t.database}): cannot connect as admin: ${this.opts.redactor.scrub(messageOf(err))}`,
        { account, target: targetName, cause: err },
      );
    }
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (err) {
      if (!(err as { code?: string }).code) broken = err as Error;
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** Open a fresh connection as `user` with `password`, as an application would, and check current_user. */
  async tryLogin(
    targetName: string,
    user: string,
    password: string,
    applicationName = 'pgrotate-verify',
    via?: { host: string; port: number; database?: string | undefined },
  ): Promise<LoginResult> {
    // `via`: the same login through a PgBouncer in front of the target.
    const config = this.clientConfig(targetName, user, password, applicationName);
    if (via) Object.assign(config, { host: via.host, port: via.port, database: via.database ?? config.database });
    const client = new pg.Client(config);
    client.on('error', () => undefined);
    // A login proves a password only if the server asked for one: pg_hba.conf may have changed
    // to trust (or to a method that takes no password) since the pre-flight probe.
    let passwordAsked = false;
    const connection = (client as unknown as { connection: EventEmitter }).connection;
    for (const request of PASSWORD_REQUESTS) connection.once(request, () => (passwordAsked = true));
    const unproven = (): LoginResult => ({
      ok: false,
      authFailure: false,
      refusal: 'host',
      message: `the server let role ${JSON.stringify(user)} in without asking for a password (pg_hba.conf trust, or a method that takes none), so the login proves nothing`,
    });
    try {
      await client.connect();
      if (!passwordAsked) return unproven();
      const res = await client.query<{ u: string }>('SELECT current_user AS u');
      if (res.rows[0]?.u !== user)
        return {
          ok: false,
          authFailure: true,
          refusal: 'password',
          message: `logged in as ${res.rows[0]?.u ?? '?'} instead of ${user}`,
        };
      return { ok: true, proof: 'session' };
    } catch (err) {
      const r = classifyLoginError(err, this.opts.redactor.scrub(messageOf(err)));
      // A connection limit after the password exchange is proof only if there was an exchange.
      return r.ok && !passwordAsked ? unproven() : r;
    } finally {
      // Not awaited: the answer is known, and the server's goodbye would only delay what waits
      // on it (the promote, right after a verify login). Until that goodbye arrives the client
      // stays reachable from its socket, so it must not keep the password it logged in with: on
      // a busy machine the goodbye can come after the rotation has ended (issue 24.6).
      forgetPassword(client);
      this.closeLogin(targetName, user, client);
    }
  }

  /**
   * Run `fn` on a fresh session as `user` logged in with `password` (`admin: self`: the role
   * changes its own password). The login must be proven as tryLogin's is (a password asked for,
   * current_user the role); otherwise `fn` does not run and the failed login is returned.
   */
  async withLogin<T>(
    targetName: string,
    user: string,
    password: string,
    fn: (client: pg.ClientBase) => Promise<T>,
  ): Promise<{ ok: true; value: T } | { ok: false; login: Extract<LoginResult, { ok: false }> }> {
    const client = new pg.Client(this.clientConfig(targetName, user, password, 'pgrotate-self'));
    client.on('error', () => undefined);
    let passwordAsked = false;
    const connection = (client as unknown as { connection: EventEmitter }).connection;
    for (const request of PASSWORD_REQUESTS) connection.once(request, () => (passwordAsked = true));
    let connected = false;
    try {
      try {
        await client.connect();
        connected = true;
      } catch (err) {
        const r = classifyLoginError(err, this.opts.redactor.scrub(messageOf(err)));
        // A connection limit proves the password but leaves no session to work in.
        return {
          ok: false,
          login: r.ok ? { ok: false, authFailure: false, refusal: 'fault', message: r.message ?? '' } : r,
        };
      }
      forgetPassword(client);
      if (!passwordAsked)
        return {
          ok: false,
          login: {
            ok: false,
            authFailure: false,
            refusal: 'host',
            message: `the server let role ${JSON.stringify(user)} in without asking for a password (pg_hba.conf trust, or a method that takes none), so the login proves nothing`,
          },
        };
      const res = await client.query<{ u: string }>('SELECT current_user AS u');
      if (res.rows[0]?.u !== user)
        return {
          ok: false,
          login: {
            ok: false,
            authFailure: true,
            refusal: 'password',
            message: `logged in as ${res.rows[0]?.u ?? '?'} instead of ${user}`,
          },
        };
      return { ok: true, value: await fn(client) };
    } finally {
      forgetPassword(client);
      if (connected) await client.end().catch(() => undefined);
    }
  }

  /**
   * Backend pids of logins as `user` that this connector opened and is still closing. Its own
   * verify login (not awaited, above) can still be in pg_stat_activity when a rotation ends the
   * role's sessions right after: it is pgrotate's, not an application's, so it is neither
   * counted nor signalled (an offboarding reported "1 session ended" where there was none).
   */
  closingSessionsOf(targetName: string, user: string): number[] {
    return [...(this.closingLogins.get(`${targetName}\0${user}`) ?? [])];
  }

  private closeLogin(targetName: string, user: string, client: pg.Client): void {
    const pid = (client as unknown as { processID?: number | null }).processID;
    const key = `${targetName}\0${user}`;
    if (typeof pid === 'number') {
      const pids = this.closingLogins.get(key) ?? new Set<number>();
      pids.add(pid);
      this.closingLogins.set(key, pids);
    }
    void client
      .end()
      .catch(() => undefined)
      .finally(() => {
        const pids = this.closingLogins.get(key);
        if (typeof pid !== 'number' || !pids) return;
        pids.delete(pid);
        if (pids.size === 0) this.closingLogins.delete(key);
      });
  }

  /**
   * Is the path from here to a password check open for `user`? Sends a startup message as the
   * role and hangs up at the server's first answer (see login-path-probe.ts): a password request
   * means open, 28000 means this host is refused, AuthenticationOk means the host does not check
   * passwords (trust), so a verify login from here could prove nothing. No password is sent, no
   * PBKDF2 runs and the server logs no failed login.
   *
   * With `reuse`, an open answer for the same target and role from a probe started less than
   * `probeReuseMs` ago (or still under way) serves instead, marked `reused`; a closed or failed
   * answer is never reused. The caller decides when that is safe (see the engine's pre-flight).
   */
  async probeLoginPath(targetName: string, user: string, opts: { reuse?: boolean } = {}): Promise<LoginPathAnswer> {
    const key = `${targetName}\0${user}`;
    const windowMs = this.opts.probeReuseMs ?? DEFAULT_PROBE_REUSE_MS;
    const earlier = this.probes.get(key);
    if (opts.reuse && windowMs > 0 && earlier && performance.now() - earlier.startedAt < windowMs) {
      const answer = await earlier.answer;
      if (answer.open) return { ...answer, reused: true };
    }
    if (this.probes.size >= PROBE_SWEEP_AT) {
      const now = performance.now();
      for (const [k, p] of this.probes) if (now - p.startedAt >= windowMs) this.probes.delete(k);
    }
    const entry = { startedAt: performance.now(), answer: probeLoginPathOf(this.endpoint(targetName), user) };
    this.probes.set(key, entry);
    const probe = await entry.answer;
    if (probe.open) return probe;
    if (this.probes.get(key) === entry) this.probes.delete(key);
    return { ...probe, message: this.opts.redactor.scrub(probe.message) };
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map(async (p) => (await p.catch(() => null))?.end().catch(() => undefined)));
  }

  private clientConfig(targetName: string, user: string, password: string, applicationName?: string): pg.ClientConfig {
    // Not in @types/pg yet: node-postgres's cap on the server's SCRAM iteration count.
    const scramMaxIterations = Math.max(DEFAULT_CLIENT_SCRAM_MAX_ITERATIONS, this.opts.scramIterations ?? 0);
    return {
      ...clientConfig(this.endpoint(targetName), user, password, applicationName),
      scramMaxIterations,
    } as pg.ClientConfig;
  }

  private target(name: string): TargetConfig {
    const t = this.opts.targets[name];
    if (!t) throw new TargetUnreachableError(`unknown target ${name}`, { target: name });
    return t;
  }

  private pool(targetName: string, account: string | undefined): Promise<pg.Pool> {
    let pool = this.pools.get(targetName);
    if (!pool) {
      const target = this.target(targetName);
      pool = this.opts.resolveAdmin(targetName, target).then((admin) => {
        this.opts.redactor.add(admin.password);
        const config = {
          ...this.clientConfig(targetName, admin.username, admin.password),
          max: this.opts.poolSize ?? 4,
        };
        const p = admin.credential
          ? new CredentialPool(config, admin.credential)
          : new pg.Pool({ ...config, Client: ResilientClient });
        p.on('error', () => undefined);
        return p;
      });
      // A failed resolution is not cached, so a later call can retry.
      pool.catch(() => this.pools.delete(targetName));
      this.pools.set(targetName, pool);
    }
    return pool.catch((err: unknown) => {
      if (err instanceof TargetUnreachableError) throw err;
      throw new TargetUnreachableError(
        `${account ? `account ${account}: ` : ''}target ${targetName}: cannot obtain admin credentials: ${this.opts.redactor.scrub(messageOf(err))}`,
        {
          account,
          target: targetName,
          cause: err,
        },
      );
    });
  }
}

/** Drop the password a login client holds (pg keeps it on the client and its connection parameters). */
function forgetPassword(client: pg.Client): void {
  const c = client as unknown as { password: unknown; connectionParameters: { password: unknown } };
  c.password = null;
  c.connectionParameters.password = null;
}
