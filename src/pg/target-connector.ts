import pg from 'pg';
import type { TargetConfig } from '../config/config-schema.js';
import { TargetUnreachableError, messageOf } from '../errors.js';
import type { Redactor } from '../logging/redactor.js';
import { clientConfig, type Endpoint } from './connection-options.js';
import { ResilientClient } from './resilient-client.js';

/** Credentials of a target's admin login, resolved from config or from a provider. */
export interface AdminCredentials {
  username: string;
  password: string;
}

export type LoginResult = { ok: true } | { ok: false; authFailure: boolean; message: string };

/** SQLSTATEs meaning "the server answered and refused this login", as opposed to a fault. */
const AUTH_REFUSED = new Set(['28P01', '28000']);

export interface TargetConnectorOptions {
  targets: Record<string, TargetConfig>;
  resolveAdmin: (targetName: string, target: TargetConfig) => Promise<AdminCredentials>;
  redactor: Redactor;
  /** Admin connections kept per target; also caps concurrent admin statements per database. */
  poolSize?: number;
}

/** Admin connection pools and test logins for the configured targets. */
export class TargetConnector {
  private readonly pools = new Map<string, Promise<pg.Pool>>();

  constructor(private readonly opts: TargetConnectorOptions) {}

  /** Where a target is, for connections and for the host/port/dbname written into secrets. */
  endpoint(targetName: string): Endpoint {
    const t = this.target(targetName);
    return { host: t.host, port: t.port, database: t.database, sslmode: t.sslmode, caFile: t.caFile, connectTimeoutMs: t.connectTimeout };
  }

  /** The host applications use (publicHost, else host). */
  publicHost(targetName: string): string {
    const t = this.target(targetName);
    return t.publicHost ?? t.host;
  }

  /** Run `fn` on an admin connection of the target; connection failures name the target and account. */
  async withAdmin<T>(targetName: string, account: string | undefined, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
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
  async tryLogin(targetName: string, user: string, password: string): Promise<LoginResult> {
    const client = new pg.Client(clientConfig(this.endpoint(targetName), user, password, 'pgrotate-verify'));
    client.on('error', () => undefined);
    try {
      await client.connect();
      const res = await client.query<{ u: string }>('SELECT current_user AS u');
      if (res.rows[0]?.u !== user) return { ok: false, authFailure: true, message: `logged in as ${res.rows[0]?.u ?? '?'} instead of ${user}` };
      return { ok: true };
    } catch (err) {
      const code = (err as { code?: string }).code;
      return { ok: false, authFailure: code !== undefined && AUTH_REFUSED.has(code), message: this.opts.redactor.scrub(messageOf(err)) };
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map(async (p) => (await p.catch(() => null))?.end().catch(() => undefined)));
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
        const p = new pg.Pool({ ...clientConfig(this.endpoint(targetName), admin.username, admin.password), max: this.opts.poolSize ?? 4, Client: ResilientClient });
        p.on('error', () => undefined);
        return p;
      });
      // A failed resolution is not cached, so a later call can retry.
      pool.catch(() => this.pools.delete(targetName));
      this.pools.set(targetName, pool);
    }
    return pool.catch((err: unknown) => {
      if (err instanceof TargetUnreachableError) throw err;
      throw new TargetUnreachableError(`${account ? `account ${account}: ` : ''}target ${targetName}: cannot obtain admin credentials: ${this.opts.redactor.scrub(messageOf(err))}`, {
        account,
        target: targetName,
        cause: err,
      });
    });
  }
}
