import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PgServerInfo } from './pg-server.js';

const run = promisify(execFile);

/** The committed dump of a freshly migrated state schema (test/integration/state-schema.test.ts). */
export const STATE_SCHEMA_DUMP = join('test', 'fixtures', 'state-schema.sql');

/** The command that regenerates STATE_SCHEMA_DUMP (package.json `schema:dump`). */
export const REGENERATE_COMMAND = 'npm run schema:dump';

/**
 * `pg_dump --schema-only` of one schema, with the server's own pg_dump (PostgreSQL 15 from
 * Debian for the committed file), normalised so that only the schema's definition is left.
 */
export async function dumpStateSchema(server: PgServerInfo, database: string, schema: string): Promise<string> {
  const { stdout } = await run(
    join(server.binDir, 'pg_dump'),
    [
      '--schema-only',
      '--no-owner',
      '--no-privileges',
      '--no-comments',
      `--schema=${schema}`,
      `--host=${server.host}`,
      `--port=${server.port}`,
      `--username=${server.superuser}`,
      database,
    ],
    { env: { ...process.env, PGPASSWORD: server.superPassword }, maxBuffer: 16 * 1024 * 1024 },
  );
  return normaliseDump(stdout);
}

/**
 * Keep what defines the schema, drop what varies between runs and servers: comment lines (the
 * server and pg_dump versions), session SETs and set_config calls, psql's `\restrict` lines
 * (a random key since 15.14) and runs of blank lines.
 */
export function normaliseDump(text: string): string {
  const kept = text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter(
      (l) =>
        !l.startsWith('--') &&
        !/^SET \w+/.test(l) &&
        !/^SELECT pg_catalog\.set_config\(/.test(l) &&
        !/^\\(?:un)?restrict\b/.test(l),
    );
  return `${kept
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim()}\n`;
}
