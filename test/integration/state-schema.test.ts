import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/core/state/migrations.js';
import { REPO_ROOT, createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';
import { REGENERATE_COMMAND, STATE_SCHEMA_DUMP, dumpStateSchema } from '../support/state-schema-dump.js';

// Every change to the state schema shows in review: a fresh database migrated on PostgreSQL 15 is
// dumped (pg_dump --schema-only, normalised) and compared with the committed
// test/fixtures/state-schema.sql. `npm run schema:dump` runs this file with
// PGROTATE_SCHEMA_DUMP=write, which writes the file instead of failing.

const FILE = join(REPO_ROOT, STATE_SCHEMA_DUMP);

describe('state schema dump', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('a freshly migrated state database matches the committed schema dump', async () => {
    const pool = new pg.Pool({
      host: fx.server.host,
      port: fx.server.port,
      user: fx.rotator,
      password: fx.rotatorPassword,
      database: fx.stateDb,
      max: 1,
    });
    try {
      await migrate(pool, 'pgrotate');
    } finally {
      await pool.end();
    }
    const dump = await dumpStateSchema(fx.server, fx.stateDb, 'pgrotate');
    // A dump that lost its tables (a broken normalisation) must not become the reference.
    expect(dump).toMatch(/CREATE TABLE pgrotate\.rotations \(/);
    if (process.env.PGROTATE_SCHEMA_DUMP === 'write') writeFileSync(FILE, dump);
    expect(existsSync(FILE), `${STATE_SCHEMA_DUMP} is missing: run \`${REGENERATE_COMMAND}\` and commit it`).toBe(true);
    expect(
      dump,
      `the migrated state schema differs from ${STATE_SCHEMA_DUMP} (diff below: - the committed file, + this migration). ` +
        `If the change is intended (a new migration), run \`${REGENERATE_COMMAND}\` and commit the file.`,
    ).toBe(readFileSync(FILE, 'utf8'));
  });
});
