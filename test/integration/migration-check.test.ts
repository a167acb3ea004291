import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, stateMigrations } from '../../src/core/state/migrations.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

const MIGRATIONS = stateMigrations();

// Every CLI run checks the state schema at start: once it is current that is one statement
// (no transaction, no advisory lock, no DDL), counted here from PostgreSQL's statement log.
// A schema that lacks a migration still takes the locked path, once, from any number of
// processes at the same time.

const LATEST = Math.max(...MIGRATIONS.map((m) => m.version));
// What undoes the latest migration (0007-account-adoption.sql), to fake a schema one version behind.
// A new migration changes LATEST: update the two undo statements below with it.

/** The statements PostgreSQL logged for backend `pid` between two marker statements of the test. */
async function statementsOf(fx: PgFixture, pid: number, run: () => Promise<void>): Promise<string[]> {
  const mark = async (label: string) => {
    const c = await fx.superClient(fx.stateDb);
    await c.query(`SELECT '${label}'`);
    await c.end();
  };
  const begin = `migration-check-begin-${randomUUID()}`;
  const end = `migration-check-end-${randomUUID()}`;
  await mark(begin);
  await run();
  await mark(end);
  // The logging collector writes asynchronously: wait until the end marker is in the file.
  let log = '';
  for (let i = 0; i < 100 && !log.includes(end); i++) {
    await new Promise((r) => setTimeout(r, 50));
    log = readFileSync(fx.server.logFile, 'utf8');
  }
  expect(log, 'the end marker reached the server log').toContain(end);
  const window = log.slice(log.indexOf(begin), log.indexOf(end));
  return window
    .split('\n')
    .filter((l) => l.includes(`[${pid}]`) && /LOG: {2}(statement|execute [^:]*):/.test(l))
    .map((l) => l.replace(/^.*?LOG: {2}/, ''));
}

describe('start-up migration check', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  const onePool = () => {
    const pool = new pg.Pool({
      host: fx.server.host,
      port: fx.server.port,
      user: fx.rotator,
      password: fx.rotatorPassword,
      database: fx.stateDb,
      max: 1,
    });
    pool.on('error', () => undefined);
    return pool;
  };

  it('a current schema costs one statement; a schema missing a migration gets it through the locked path', async () => {
    const schema = `mc_${fx.suffix}`;
    const pool = onePool();
    try {
      const pid = (await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number;
      const first = await statementsOf(fx, pid, async () => {
        expect(await migrate(pool, schema)).toEqual(MIGRATIONS.map((m) => m.version));
      });
      // A new schema: the probe finds no table, then the locked path creates everything.
      expect(first[0]).toMatch(/^statement: SELECT version FROM "mc_\w+"\.schema_migrations$/);
      expect(first).toContain('statement: BEGIN');
      expect(first.some((s) => /pg_advisory_xact_lock/.test(s))).toBe(true);

      const again = await statementsOf(fx, pid, async () => {
        expect(await migrate(pool, schema)).toEqual([]);
      });
      expect(again).toEqual([`statement: SELECT version FROM "${schema}".schema_migrations`]);

      // An older schema (the latest migration not applied): the check sees it and the locked
      // path applies exactly that one.
      expect(LATEST, 'a new migration: update the undo statement below').toBe(7);
      await pool.query(`DELETE FROM "${schema}".schema_migrations WHERE version = $1`, [LATEST]);
      await pool.query(
        `ALTER TABLE "${schema}".accounts DROP COLUMN adopted_at, DROP COLUMN adopted_from, DROP COLUMN adopt_refusal`,
      );
      const older = await statementsOf(fx, pid, async () => {
        expect(await migrate(pool, schema)).toEqual([LATEST]);
      });
      expect(older.some((s) => /pg_advisory_xact_lock/.test(s))).toBe(true);
      expect(older).toContain('statement: COMMIT');
      const versions = (
        await pool.query<{ version: number }>(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`)
      ).rows.map((r) => r.version);
      expect(versions).toEqual(MIGRATIONS.map((m) => m.version));
    } finally {
      await pool.end();
    }
  });

  it('processes starting together on a schema that lacks a migration apply it once', async () => {
    const schema = `mcc_${fx.suffix}`;
    const setup = onePool();
    try {
      await migrate(setup, schema);
      expect(LATEST, 'a new migration: update the undo statement below').toBe(7);
      await setup.query(`DELETE FROM "${schema}".schema_migrations WHERE version = $1`, [LATEST]);
      await setup.query(
        `ALTER TABLE "${schema}".accounts DROP COLUMN adopted_at, DROP COLUMN adopted_from, DROP COLUMN adopt_refusal`,
      );
    } finally {
      await setup.end();
    }
    const pools = Array.from({ length: 6 }, onePool);
    try {
      const applied = await Promise.all(pools.map((p) => migrate(p, schema)));
      expect(applied.flat()).toEqual([LATEST]);
      const again = await Promise.all(pools.map((p) => migrate(p, schema)));
      expect(again.flat()).toEqual([]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('an unreachable state database still fails with the connection error', async () => {
    const pool = new pg.Pool({
      host: fx.server.host,
      port: 1,
      user: fx.rotator,
      password: fx.rotatorPassword,
      database: fx.stateDb,
      max: 1,
      connectionTimeoutMillis: 2_000,
    });
    pool.on('error', () => undefined);
    try {
      await expect(migrate(pool, `unreach_${fx.suffix}`)).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      await pool.end();
    }
  });
});
