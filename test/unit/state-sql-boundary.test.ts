import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../src/core/state/migrations.js';

// Issue 15 item 1: every statement against pgrotate's state tables lives in src/core/state, whose
// pool and schema name stay private. This scans the product's sources (src/, jobs/, providers/)
// outside src/core/state for SQL naming a state table, for reaching into a store's pool or quoted
// schema, and for imports of src/core/state's internal modules.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCANNED = ['src', 'jobs', 'providers'];
const STATE_DIR = join('src', 'core', 'state');

/** The tables the migrations create (so a new table is covered without editing this test). */
function stateTables(): string[] {
  const names = new Set<string>();
  for (const m of MIGRATIONS)
    for (const hit of m.sql('S').matchAll(/CREATE TABLE (?:IF NOT EXISTS )?S\.(\w+)/g)) names.add(hit[1] as string);
  return [...names];
}

/** What in `text` breaks the rule, one line each ("line N: why"). */
function boundaryProblems(text: string, tables: string[]): string[] {
  const problems: string[] = [];
  const sqlOnTable = new RegExp(`\\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\\s+(?:[\\w"\${}.]+\\.)?"?(${tables.join('|')})\\b`);
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const where = `line ${i + 1}`;
    const sql = sqlOnTable.exec(line);
    if (sql) problems.push(`${where}: SQL on state table ${sql[1]}`);
    if (/\bstate\.pool\b|\bstore\.pool\b/.test(line)) problems.push(`${where}: uses the state store's pool`);
    if (/\.s\}/.test(line)) problems.push(`${where}: interpolates the quoted state schema`);
    if (/from '[^']*\/state\/(?:state-tables|[\w-]+-queries)\.js'/.test(line))
      problems.push(`${where}: imports an internal module of src/core/state`);
  });
  return problems;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

describe('state SQL boundary', () => {
  const tables = stateTables();

  it('knows the state tables from the migrations', () => {
    expect(tables).toEqual(
      expect.arrayContaining([
        'accounts',
        'rotations',
        'audit_events',
        'audit_runs',
        'audit_findings',
        'audit_schedule',
      ]),
    );
  });

  it('flags SQL on a state table, the pool, the quoted schema and internal imports', () => {
    const sample = [
      'const res = await state.pool.query(`SELECT name FROM ${state.s}.accounts WHERE next_due_at <= now()`);',
      "await db.query('UPDATE pgrotate.rotations SET status = 1');",
      'INSERT INTO "pgrotate".audit_events (kind) VALUES ($1)',
      "import { StateTables } from '../src/core/state/state-tables.js';",
      "import { claimDueAccounts } from '../state/account-queries.js';",
    ].join('\n');
    expect(boundaryProblems(sample, tables)).toEqual([
      'line 1: SQL on state table accounts',
      "line 1: uses the state store's pool",
      'line 1: interpolates the quoted state schema',
      'line 2: SQL on state table rotations',
      'line 3: SQL on state table audit_events',
      'line 4: imports an internal module of src/core/state',
      'line 5: imports an internal module of src/core/state',
    ]);
    // Words in prose and other databases' tables are not state SQL.
    expect(
      boundaryProblems('// the due accounts from the config; SELECT * FROM pg_roles; FROM pg_stat_activity', tables),
    ).toEqual([]);
  });

  it('no file outside src/core/state holds SQL for the state tables or reaches into the store', () => {
    const found: string[] = [];
    for (const top of SCANNED) {
      for (const file of sourceFiles(join(ROOT, top))) {
        const rel = relative(ROOT, file);
        if (rel.startsWith(STATE_DIR)) continue;
        for (const p of boundaryProblems(readFileSync(file, 'utf8'), tables)) found.push(`${rel} ${p}`);
      }
    }
    expect(found).toEqual([]);
  });
});
