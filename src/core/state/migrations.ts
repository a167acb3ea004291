import type { Pool, PoolClient } from 'pg';
import { quoteIdent } from '../pg/quote.js';

// Schema migrations, run at start by every process. They are serialised by a transaction-level
// advisory lock, so any number of workers starting together apply each version exactly once.

const MIGRATION_LOCK_KEY = 'pgrotate:migrations';

/** Ordered list; a migration is never edited once released, only followed by a new one. */
export const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: (s: string) => string }> = [
  {
    version: 1,
    name: 'accounts, rotations, audit events',
    sql: (s) => `
      CREATE TABLE ${s}.accounts (
        name text PRIMARY KEY,
        target text NOT NULL,
        strategy text NOT NULL,
        active_role text,
        last_rotation_id uuid,
        last_rotated_at timestamptz,
        old_credential_expires_at timestamptz,
        next_due_at timestamptz,
        last_status text,
        last_error text,
        consecutive_failures integer NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX accounts_next_due_idx ON ${s}.accounts (next_due_at);
      CREATE TABLE ${s}.rotations (
        id uuid PRIMARY KEY,
        account text NOT NULL,
        strategy text NOT NULL,
        status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
        step text NOT NULL CHECK (step IN ('created', 'staged', 'applied', 'verified', 'promoted', 'recorded')),
        target_role text NOT NULL,
        previous_role text,
        reason text,
        requested_by text,
        terminate_sessions boolean NOT NULL DEFAULT false,
        attempts integer NOT NULL DEFAULT 1,
        started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        finished_at timestamptz,
        applied_at timestamptz,
        old_credential_expires_at timestamptz,
        sessions_ended integer,
        error text
      );
      CREATE UNIQUE INDEX rotations_one_running_per_account ON ${s}.rotations (account) WHERE status = 'running';
      CREATE INDEX rotations_account_started_idx ON ${s}.rotations (account, started_at DESC);
      CREATE TABLE ${s}.audit_events (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        account text,
        rotation_id uuid,
        kind text NOT NULL,
        actor text,
        detail jsonb NOT NULL DEFAULT '{}'::jsonb
      );
      CREATE INDEX audit_events_account_idx ON ${s}.audit_events (account, id);
    `,
  },
  {
    version: 2,
    name: 'scheduler: planned schedule, last queued time',
    // schedule: what next_due_at was computed from, so a changed schedule in the config is
    // noticed. queued_at: when a tick last queued the account, so later ticks do not offer it
    // again (until a re-offer interval passes, in case the queue lost it). The tick uses
    // accounts_next_due_idx from version 1.
    sql: (s) => `ALTER TABLE ${s}.accounts ADD COLUMN schedule text, ADD COLUMN queued_at timestamptz;`,
  },
  {
    version: 3,
    name: 'accounts: warnings of the last successful rotation',
    // What a person should act on although the rotation succeeded (a VALID UNTIL before the next
    // due time, a role at its connection limit); shown by status, cleared by the next success.
    sql: (s) => `ALTER TABLE ${s}.accounts ADD COLUMN warnings text[] NOT NULL DEFAULT '{}';`,
  },
  {
    version: 4,
    name: 'scheduled security audits: runs, findings, schedule',
    // audit_findings keeps one row per (target, check, subject) while it is open; a finding
    // that disappears gets resolved_at, and one that comes back opens a new row. audit_schedule
    // is claimed with one UPDATE, so several workers run each target's audit once per interval.
    sql: (s) => `
      CREATE TABLE ${s}.audit_runs (
        id bigserial PRIMARY KEY,
        target text NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        actor text,
        report jsonb NOT NULL
      );
      CREATE INDEX audit_runs_target_idx ON ${s}.audit_runs (target, id DESC);
      CREATE TABLE ${s}.audit_findings (
        id bigserial PRIMARY KEY,
        target text NOT NULL,
        "check" text NOT NULL,
        subject text NOT NULL,
        severity text NOT NULL,
        message text NOT NULL,
        fix text NOT NULL,
        first_run_id bigint NOT NULL,
        last_run_id bigint NOT NULL,
        first_seen_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        resolved_at timestamptz
      );
      CREATE UNIQUE INDEX audit_findings_open ON ${s}.audit_findings (target, "check", subject) WHERE resolved_at IS NULL;
      CREATE TABLE ${s}.audit_schedule (
        target text PRIMARY KEY,
        next_run_at timestamptz NOT NULL
      );
    `,
  },
];

/**
 * Does the schema already have every migration? One statement, no transaction and no lock: every
 * process runs this at start, and once a schema is current that is all it needs (the full path
 * below is six statements, two of them DDL that takes locks). Rows appear only when a migrating
 * transaction commits, so seeing all of them means they are applied; seeing fewer, or no table
 * (a first start: the one ERROR this adds to the server log), sends the caller to the locked path.
 */
async function isCurrent(client: PoolClient, s: string): Promise<boolean> {
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
  return MIGRATIONS.every((m) => done.has(m.version));
}

/** Bring the schema up to date; safe to call concurrently from many processes. */
export async function migrate(pool: Pool, schema: string): Promise<number[]> {
  const s = quoteIdent(schema);
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    if (await isCurrent(client, s)) return applied;
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`${MIGRATION_LOCK_KEY}:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set(
      (await client.query<{ version: number }>(`SELECT version FROM ${s}.schema_migrations`)).rows.map(
        (r) => r.version,
      ),
    );
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await client.query(m.sql(s));
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
