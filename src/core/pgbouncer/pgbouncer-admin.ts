import pg from 'pg';
import type { SslMode } from '../config/config-schema.js';
import type { PgbouncerConfig } from '../config/target-config-schema.js';
import { PgbouncerError, messageOf } from '../errors.js';
import type { Redactor } from '../logging/redactor.js';
import { clientConfig } from '../pg/connection-options.js';

// PgBouncer's admin console: the pseudo-database `pgbouncer`, reached with the PostgreSQL
// protocol. It answers the simple query protocol only, so every statement goes without
// parameters (node-postgres uses the simple protocol for a query without values).

/** How an instance is named in errors and logs: target and address. */
export function pgbouncerName(targetName: string, instance: PgbouncerConfig): string {
  return `PgBouncer ${instance.host}:${instance.port} of target ${targetName}`;
}

/** One server connection of PgBouncer's pools (SHOW SERVERS). */
export interface PooledServer {
  user: string;
  database: string;
  /** The PostgreSQL backend pid of the connection. */
  remotePid: number;
}

/** The admin console of one PgBouncer, for the duration of `fn`; failures name the instance. */
export async function withPgbouncerAdmin<T>(
  targetName: string,
  instance: PgbouncerConfig,
  opts: { sslmode: SslMode; caFile?: string | undefined; connectTimeoutMs: number; redactor: Redactor },
  fn: (console: PgbouncerConsole) => Promise<T>,
): Promise<T> {
  const name = pgbouncerName(targetName, instance);
  opts.redactor.add(instance.admin.password);
  // The same TLS mode as the target's: PgBouncer is how applications reach it.
  const endpoint = {
    host: instance.host,
    port: instance.port,
    database: 'pgbouncer',
    sslmode: opts.sslmode,
    caFile: opts.caFile,
    connectTimeoutMs: opts.connectTimeoutMs,
  };
  const client = new pg.Client(clientConfig(endpoint, instance.admin.username, instance.admin.password));
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new PgbouncerError(
      `${name}: cannot connect to the admin console as ${instance.admin.username}: ${opts.redactor.scrub(messageOf(err))}`,
      { target: targetName, cause: err },
    );
  }
  try {
    return await fn(new PgbouncerConsole(client, name, targetName, opts.redactor));
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The statements pgrotate sends to the console. */
export class PgbouncerConsole {
  constructor(
    private readonly client: pg.Client,
    readonly name: string,
    private readonly targetName: string,
    private readonly redactor: Redactor,
  ) {}

  /** Re-read pgbouncer.ini and the auth_file. */
  async reload(): Promise<void> {
    await this.run('RELOAD');
  }

  /** Close every server connection once released (all pools: PgBouncer 1.18 has no per-user form). */
  async reconnect(): Promise<void> {
    await this.run('RECONNECT');
  }

  /** SHOW CONFIG as a key → value map. */
  async config(): Promise<Map<string, string>> {
    const res = await this.run('SHOW CONFIG');
    return new Map(res.rows.map((r: Record<string, unknown>) => [String(r.key), String(r.value ?? '')]));
  }

  /** The server connections in PgBouncer's pools. */
  async servers(): Promise<PooledServer[]> {
    const res = await this.run('SHOW SERVERS');
    return res.rows
      .map((r: Record<string, unknown>) => ({
        user: String(r.user),
        database: String(r.database),
        remotePid: Number(r.remote_pid),
      }))
      .filter((s) => Number.isInteger(s.remotePid) && s.remotePid > 0);
  }

  private async run(statement: string): Promise<pg.QueryResult> {
    try {
      return await this.client.query(statement);
    } catch (err) {
      throw new PgbouncerError(`${this.name}: ${statement} failed: ${this.redactor.scrub(messageOf(err))}`, {
        target: this.targetName,
        cause: err,
      });
    }
  }
}
