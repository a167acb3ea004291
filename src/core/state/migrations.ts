import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pool, PoolClient } from 'pg';
import { StateStoreError, messageOf } from '../errors.js';
import { quoteIdent } from '../pg/quote.js';
import { STATE_SQL } from './state-statements.js';

// Schema migrations, run at start by every process. They are serialised by a transaction-level
// advisory lock, so any number of workers starting together apply each version exactly once.
//
// Each migration is a numbered file in ./migrations/ (NNNN-words.sql, first line
// `-- pgrotate migration N: name`), run with search_path set to the state schema, so the files
// name no schema. This runner is the one place that does: it must create the schema and its
// bookkeeping table before anything can rely on a search_path. `npm run build` copies the files
// next to the compiled module (scripts/copy-sql.mjs).

const MIGRATION_LOCK_KEY = 'pgrotate:migrations';
const DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
const FILE_NAME = /^(\d{4})-[a-z0-9][a-z0-9-]*\.sql$/;
const HEADER = /^-- pgrotate migration (\d+): (\S.*)$/;

/** One migration file: its version (the file's number), the name recorded with it, and its SQL. */
export interface Migration {
  version: number;
  name: string;
  file: string;
  sql: string;
}

let cached: readonly Migration[] | null = null;

/**
 * The migration files of `dir`, in version order; read once per process for the default folder.
 * Throws StateStoreError naming the file when the folder is missing (a build that did not copy
 * them), a name or header is malformed, or versions are not 1, 2, 3, … without gaps.
 */
export function stateMigrations(dir: string = DIR): readonly Migration[] {
  if (dir === DIR && cached) return cached;
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.sql'));
  } catch (err) {
    throw new StateStoreError(`state migrations: cannot read ${dir} (${messageOf(err)})`, { cause: err });
  }
  const out = names.sort().map((file): Migration => {
    const num = FILE_NAME.exec(file);
    if (!num) throw new StateStoreError(`state migrations: ${file} is not named NNNN-words.sql`);
    const sql = readFileSync(join(dir, file), 'utf8');
    const header = HEADER.exec(sql.split('\n', 1)[0] ?? '');
    if (!header || Number(header[1]) !== Number(num[1]))
      throw new StateStoreError(
        `state migrations: ${file} must start with "-- pgrotate migration ${Number(num[1])}: <name>"`,
      );
    return { version: Number(num[1]), name: (header[2] as string).trim(), file, sql };
  });
  out.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new StateStoreError(`state migrations: ${m.file} has version ${m.version}, expected ${i + 1}`);
  });
  if (out.length === 0) throw new StateStoreError(`state migrations: no .sql file in ${dir}`);
  if (dir === DIR) cached = out;
  return out;
}

/**
 * Does the schema already have every migration? One statement, no transaction and no lock: every
 * process runs this at start, and once a schema is current that is all it needs (the full path
 * below is seven statements, two of them DDL that takes locks). Rows appear only when a migrating
 * transaction commits, so seeing all of them means they are applied; seeing fewer, or no table
 * (a first start: the one ERROR this adds to the server log), sends the caller to the locked path.
 */
async function isCurrent(client: PoolClient, s: string, migrations: readonly Migration[]): Promise<boolean> {
  let versions: number[];
  try {
    const res = await client.query<{ version: number }>(`SELECT version FROM ${s}.schema_migrations`);
    versions = res.rows.map((r) => r.version);
  } catch (err) {
    // A server's answer (no schema or table yet, no privilege): the locked path decides, and
    // reports its own errors. A lost connection is not a reason to try again here.
    if ((err as { code?: unknown }).code === undefined) throw err;
    return false;
  }
  const done = new Set(versions);
  return migrations.every((m) => done.has(m.version));
}

/** Bring the schema up to date; safe to call concurrently from many processes. */
export async function migrate(pool: Pool, schema: string): Promise<number[]> {
  const migrations = stateMigrations();
  const s = quoteIdent(schema);
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    if (await isCurrent(client, s, migrations)) return applied;
    await client.query('BEGIN');
    await client.query(STATE_SQL.lockForTransaction, [`${MIGRATION_LOCK_KEY}:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    // For this transaction only: the files' unqualified names land in the state schema, and the
    // pooled connection goes back with the search_path it came with.
    await client.query(`SET LOCAL search_path TO ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set(
      (await client.query<{ version: number }>(`SELECT version FROM ${s}.schema_migrations`)).rows.map(
        (r) => r.version,
      ),
    );
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query(`INSERT INTO ${s}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
