import { readFileSync } from 'node:fs';
import type { ClientConfig } from 'pg';
import type { SslMode } from '../config/config-schema.js';
import { ConfigError } from '../errors.js';

/** Where and how to connect; the password is supplied separately so it is never in a URL. */
export interface Endpoint {
  host: string;
  port: number;
  database: string;
  sslmode: SslMode;
  caFile?: string | undefined;
  connectTimeoutMs?: number | undefined;
}

/** node-postgres TLS settings matching libpq's sslmode semantics. */
export function sslOptions(sslmode: SslMode, caFile?: string): ClientConfig['ssl'] {
  const ca = caFile ? readFileSync(caFile, 'utf8') : undefined;
  switch (sslmode) {
    case 'disable':
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
      // Chain is checked; host name is not (libpq verify-ca).
      return { rejectUnauthorized: true, ca, checkServerIdentity: () => undefined };
    case 'verify-full':
      return { rejectUnauthorized: true, ca };
  }
}

/** Client config for a login; `application_name` marks pgrotate's own sessions. */
export function clientConfig(
  endpoint: Endpoint,
  user: string,
  password: string,
  applicationName = 'pgrotate',
): ClientConfig {
  return {
    host: endpoint.host,
    port: endpoint.port,
    database: endpoint.database,
    user,
    password,
    ssl: sslOptions(endpoint.sslmode, endpoint.caFile),
    connectionTimeoutMillis: endpoint.connectTimeoutMs ?? 10_000,
    application_name: applicationName,
  };
}

/**
 * Split a postgres:// URL into client settings. Done here rather than with node-postgres's
 * connectionString, which would override an explicitly supplied password with the URL's.
 */
export function parsePostgresUrl(
  url: string,
  keyPath: string,
): { host: string; port: number; user?: string; password?: string; database?: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`${keyPath}: not a valid postgres:// URL`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:')
    throw new ConfigError(`${keyPath}: URL must start with postgres://`);
  const out: { host: string; port: number; user?: string; password?: string; database?: string } = {
    host: decodeURIComponent(u.hostname || '127.0.0.1').replace(/^\[(.*)\]$/, '$1'),
    port: u.port ? Number(u.port) : 5432,
  };
  if (u.username) out.user = decodeURIComponent(u.username);
  if (u.password) out.password = decodeURIComponent(u.password);
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (db) out.database = db;
  return out;
}
