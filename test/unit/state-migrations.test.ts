import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stateMigrations } from '../../src/core/state/migrations.js';
import { withStateSearchPath } from '../../src/core/state/state-search-path.js';

// The numbered .sql migration files: the versions and names released builds recorded in
// schema_migrations stay the same (so a database migrated by an older pgrotate is current for
// this one), and a malformed folder fails naming the file, before any SQL runs.

/** What pgrotate 0.1.0 (migrations as closures) recorded, version by version. */
const RELEASED = [
  { version: 1, name: 'accounts, rotations, audit events' },
  { version: 2, name: 'scheduler: planned schedule, last queued time' },
  { version: 3, name: 'accounts: warnings of the last successful rotation' },
  { version: 4, name: 'scheduled security audits: runs, findings, schedule' },
];

const dirs: string[] = [];
function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-migrations-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('state migration files', () => {
  it('keep the released versions and names, in order, and name no schema', () => {
    const all = stateMigrations();
    expect(all.slice(0, RELEASED.length).map((m) => ({ version: m.version, name: m.name }))).toEqual(RELEASED);
    expect(all.map((m) => m.version)).toEqual(all.map((_, i) => i + 1));
    for (const m of all) {
      expect(m.file).toMatch(new RegExp(`^${String(m.version).padStart(4, '0')}-[a-z0-9-]+\\.sql$`));
      // `SET search_path FROM CURRENT` (a trigger function keeping the migrating session's schema)
      // names no schema; any other search_path would.
      const code = m.sql.replace(/--.*$/gm, '').replace(/SET search_path FROM CURRENT/g, '');
      expect(code, m.file).not.toMatch(/pgrotate\.|"\w+"\.\w+|search_path/);
    }
  });

  it('a folder that is missing (a build that did not copy them) fails naming it', () => {
    const missing = join(tmpdir(), 'pgrotate-no-such-migrations');
    expect(() => stateMigrations(missing)).toThrow(`state migrations: cannot read ${missing}`);
    expect(() => stateMigrations(folder({ 'README.md': 'x' }))).toThrow(/state migrations: no \.sql file in /);
  });

  it('a badly named file, a wrong header and a gap in the versions each fail naming the file', () => {
    const ok = '-- pgrotate migration 1: first\nCREATE TABLE a (x int);\n';
    expect(() => stateMigrations(folder({ '1-first.sql': ok }))).toThrow(
      'state migrations: 1-first.sql is not named NNNN-words.sql',
    );
    expect(() => stateMigrations(folder({ '0001-first.sql': 'CREATE TABLE a (x int);\n' }))).toThrow(
      'state migrations: 0001-first.sql must start with "-- pgrotate migration 1: <name>"',
    );
    expect(() => stateMigrations(folder({ '0001-first.sql': ok.replace('migration 1', 'migration 2') }))).toThrow(
      '0001-first.sql must start with "-- pgrotate migration 1: <name>"',
    );
    expect(() =>
      stateMigrations(folder({ '0001-first.sql': ok, '0003-third.sql': '-- pgrotate migration 3: third\n' })),
    ).toThrow('state migrations: 0003-third.sql has version 3, expected 2');
    expect(() =>
      stateMigrations(folder({ '0001-first.sql': ok, '0001-again.sql': '-- pgrotate migration 1: again\n' })),
    ).toThrow(/has version 1, expected 2/);
  });

  it('reads a well-formed folder in version order', () => {
    const dir = folder({
      '0002-second.sql': '-- pgrotate migration 2: second: with a colon\nALTER TABLE a ADD y int;\n',
      '0001-first.sql': '-- pgrotate migration 1: first\nCREATE TABLE a (x int);\n',
    });
    expect(stateMigrations(dir).map((m) => [m.version, m.name, m.file])).toEqual([
      [1, 'first', '0001-first.sql'],
      [2, 'second: with a colon', '0002-second.sql'],
    ]);
  });
});

describe('state search_path option', () => {
  it('puts the quoted schema first and pg_temp last, after any options already given', () => {
    expect(withStateSearchPath('pgrotate')).toBe('-c search_path="pgrotate",pg_temp');
    expect(withStateSearchPath('pgrotate', '-c statement_timeout=5s')).toBe(
      '-c statement_timeout=5s -c search_path="pgrotate",pg_temp',
    );
    // The server splits options at white space: a space in a (quoted) name is escaped.
    expect(withStateSearchPath('odd name')).toBe('-c search_path="odd\\ name",pg_temp');
  });
});
