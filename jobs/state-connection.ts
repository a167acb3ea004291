import type pg from 'pg';
import type { PgrotateConfig } from '../src/core/config/config-schema.js';
import { parsePostgresUrl, sslOptions } from '../src/core/pg/connection-options.js';
import type { LiveCredential } from '../src/core/pg/live-credential.js';

/**
 * node-postgres settings for the state database (the password apart from the URL, as in
 * createApp). With `credential` (a state login pgrotate rotates), each connection takes its
 * password of the moment.
 */
export function stateConnectionConfig(
  config: PgrotateConfig,
  applicationName: string,
  credential?: LiveCredential | null,
): pg.PoolConfig {
  const password = credential
    ? { user: credential.username, password: () => credential.password() }
    : typeof config.state.password === 'string'
      ? { password: config.state.password }
      : {};
  return {
    ...parsePostgresUrl(config.state.url, 'state.url'),
    ...password,
    ssl: sslOptions(config.state.sslmode, config.state.caFile),
    application_name: applicationName,
    connectionTimeoutMillis: 10_000,
  };
}
