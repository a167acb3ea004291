import type pg from 'pg';
import type { PgrotateConfig } from '../src/config/config-schema.js';
import { parsePostgresUrl, sslOptions } from '../src/pg/connection-options.js';

/** node-postgres settings for the state database (the password apart from the URL, as in createApp). */
export function stateConnectionConfig(config: PgrotateConfig, applicationName: string): pg.PoolConfig {
  return {
    ...parsePostgresUrl(config.state.url, 'state.url'),
    ...(config.state.password ? { password: config.state.password } : {}),
    ssl: sslOptions(config.state.sslmode, config.state.caFile),
    application_name: applicationName,
    connectionTimeoutMillis: 10_000,
  };
}
