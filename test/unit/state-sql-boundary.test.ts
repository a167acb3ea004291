import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stateMigrations } from '../../src/core/state/migrations.js';
import { STATE_SQL } from '../../src/core/state/state-statements.js';

// Issue 15 item 1: every statement against pgrotate's state tables lives in src/core/state, whose
// pool and schema name stay private. Issue 26 item 3: inside that folder, every statement is a
// named one in state-statements.ts, each text once and with no schema name in it (the state
// connections' search_path qualifies them); the migration runner (migrations.ts) is the one file
// that puts the schema name into SQL, and the search_path option (state-search-path.ts) the one
// other that quotes it. This scans the product's sources (src/, jobs/, providers/).

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCANNED = ['src', 'jobs', 'providers'];
const STATE_DIR = join('src', 'core', 'state');
const STATEMENTS = join(STATE_DIR, 'state-statements.ts');
const SCHEMA_NAMERS = [join(STATE_DIR, 'migrations.ts'), join(STATE_DIR, 'state-search-path.ts')];

/** The tables the migration files create (so a new table is covered without editing this test). */
function stateTables(): string[] {
  const names = new Set<string>();
  for (const m of stateMigrations())
    for (const hit of m.sql.matchAll(/CREATE TABLE (?:IF NOT EXISTS )?(\w+)/g)) names.add(hit[1] as string);
  return [...names];
}

/** A line of SQL on one of `tables` (schema-qualified or not). */
function sqlOnTableRe(tables: string[]): RegExp {
  return new RegExp(`\\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\\s+(?:[\\w"\${}.]+\\.)?"?(${tables.join('|')})\\b`);
}

/** What in `text` (a file outside src/core/state) breaks the rule, one line each ("line N: why"). */
function boundaryProblems(text: string, tables: string[]): string[] {
  const problems: string[] = [];
  const sqlOnTable = sqlOnTableRe(tables);
  text.split('\n').forEach((line, i) => {
    const where = `line ${i + 1}`;
    const sql = sqlOnTable.exec(line);
    if (sql) problems.push(`${where}: SQL on state table ${sql[1]}`);
    if (/\bstate\.pool\b|\bstore\.pool\b/.test(line)) problems.push(`${where}: uses the state store's pool`);
    if (/\.s\}/.test(line)) problems.push(`${where}: interpolates the quoted state schema`);
    if (/from '[^']*\/state\/(?:state-tables|state-statements|[\w-]+-queries)\.js'/.test(line))
      problems.push(`${where}: imports an internal module of src/core/state`);
  });
  return problems;
}

/**
 * What in `text` (a module of src/core/state) breaks the folder's own rule: SQL on a state table
 * or an advisory-lock statement outside state-statements.ts, and the schema name put into a string
 * outside the two files allowed to (`namesSchema`).
 */
function stateModuleProblems(text: string, tables: string[], namesSchema: boolean): string[] {
  const problems: string[] = [];
  const sqlOnTable = sqlOnTableRe(tables);
  text.split('\n').forEach((line, i) => {
    const where = `line ${i + 1}`;
    const sql = sqlOnTable.exec(line);
    if (sql) problems.push(`${where}: SQL on state table ${sql[1]} outside state-statements.ts`);
    if (/pg_(?:try_)?advisory_\w*lock/.test(line))
      problems.push(`${where}: a lock statement outside state-statements.ts`);
    if (!namesSchema && /quoteIdent\(|\.s\}|\$\{s\}|\$\{[\w.]*schema\}\.\w/.test(line))
      problems.push(`${where}: puts the schema name into SQL`);
  });
  return problems;
}

/** Problems of the named statements themselves: a schema-qualified state table, a repeated text. */
function statementProblems(statements: Record<string, string>, tables: string[]): string[] {
  const problems: string[] = [];
  const qualified = new RegExp(`(?:\\w+|"[^"]+")\\.(${tables.join('|')})\\b`);
  const byText = new Map<string, string>();
  for (const [name, text] of Object.entries(statements)) {
    const q = qualified.exec(text);
    if (q) problems.push(`${name}: names a schema (${q[0]})`);
    const normal = text.replace(/\s+/g, ' ').trim();
    const twin = byText.get(normal);
    if (twin) problems.push(`${name}: same statement as ${twin}`);
    else byText.set(normal, name);
  }
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

  it('knows the state tables from the migration files', () => {
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
      "import { STATE_SQL } from '../core/state/state-statements.js';",
    ].join('\n');
    expect(boundaryProblems(sample, tables)).toEqual([
      'line 1: SQL on state table accounts',
      "line 1: uses the state store's pool",
      'line 1: interpolates the quoted state schema',
      'line 2: SQL on state table rotations',
      'line 3: SQL on state table audit_events',
      'line 4: imports an internal module of src/core/state',
      'line 5: imports an internal module of src/core/state',
      'line 6: imports an internal module of src/core/state',
    ]);
    // Words in prose and other databases' tables are not state SQL.
    expect(
      boundaryProblems('// the due accounts from the config; SELECT * FROM pg_roles; FROM pg_stat_activity', tables),
    ).toEqual([]);
  });

  it('flags, inside src/core/state, SQL and locks outside the statements file and a spliced schema', () => {
    const sample = [
      'const res = await db.pool.query("SELECT * FROM rotations WHERE account = $1 AND status = \'running\'");',
      "await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key]);",
      'await this.q(`UPDATE ${this.store.s}.accounts SET x = 1`);',
      'const s = quoteIdent(schema);',
      'await client.query(`DELETE FROM ${s}.audit_runs`);',
      'const key = `pgrotate:${db.schema}:account-sync`;',
      'const res = await db.pool.query(STATE_SQL.runningRotation, [account]);',
    ].join('\n');
    expect(stateModuleProblems(sample, tables, false)).toEqual([
      'line 1: SQL on state table rotations outside state-statements.ts',
      'line 2: a lock statement outside state-statements.ts',
      'line 3: SQL on state table accounts outside state-statements.ts',
      'line 3: puts the schema name into SQL',
      'line 4: puts the schema name into SQL',
      'line 5: SQL on state table audit_runs outside state-statements.ts',
      'line 5: puts the schema name into SQL',
    ]);
    expect(
      statementProblems(
        {
          running: "SELECT * FROM rotations WHERE account = $1 AND status = 'running'",
          again: "SELECT *  FROM rotations\n WHERE account = $1 AND status = 'running'",
          qualified: 'SELECT 1 FROM pgrotate.accounts a JOIN "s".rotations r ON r.account = a.name',
        },
        tables,
      ),
    ).toEqual(['again: same statement as running', 'qualified: names a schema (pgrotate.accounts)']);
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

  it('inside src/core/state, every statement is a named one, each once, with no schema name in it', () => {
    const found: string[] = [];
    const modules = sourceFiles(join(ROOT, STATE_DIR)).map((f) => relative(ROOT, f));
    for (const rel of modules) {
      if (rel === STATEMENTS) continue;
      const text = readFileSync(join(ROOT, rel), 'utf8');
      for (const p of stateModuleProblems(text, tables, SCHEMA_NAMERS.includes(rel))) found.push(`${rel} ${p}`);
    }
    found.push(...statementProblems(STATE_SQL, tables));
    // A statement nobody sends is dead text that would still look like part of the contract.
    const users = modules.filter((m) => m !== STATEMENTS).map((m) => readFileSync(join(ROOT, m), 'utf8'));
    for (const name of Object.keys(STATE_SQL))
      if (!users.some((t) => new RegExp(`\\bSTATE_SQL\\.${name}\\b`).test(t))) found.push(`${name}: never used`);
    expect(found).toEqual([]);
  });
});
