import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// docs/architecture.md names folders and files (which layer is where, one rotation's path, where
// to add things). This keeps it from rotting: every repository path it names must exist.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DOC = join(ROOT, 'docs', 'architecture.md');

/**
 * Paths the page names that other branches of issue 26 create (the command table, the audit
 * checks folder). Until those land they may be missing; once merged, empty this list.
 */

const TOP_LEVEL = ['src', 'providers', 'jobs', 'test', 'bench', 'scripts', 'helm', 'docs'];
const PATH_RE = new RegExp(
  `(?<![\\w./{-])((?:${TOP_LEVEL.join('|')})/(?:[A-Za-z0-9_./*-]*[A-Za-z0-9_/*])?|\\.dependency-cruiser\\.cjs)`,
  'g',
);

/** Repository paths named in a Markdown text (prose, code spans and code blocks; link targets excluded). */
function pathsNamedIn(text: string): string[] {
  const withoutLinkTargets = text.replace(/\]\([^)]*\)/g, ']');
  return [...new Set([...withoutLinkTargets.matchAll(PATH_RE)].map((m) => m[1] ?? ''))];
}

/** Whether a named path exists under `root`; `NNNN` and `*` in the last segment match any digits / text. */
function pathExists(root: string, path: string): boolean {
  const last = basename(path);
  if (!/NNNN|\*/.test(last))
    return existsSync(join(root, path)) && (!path.endsWith('/') || statSync(join(root, path)).isDirectory());
  const dir = join(root, dirname(path));
  if (!existsSync(dir)) return false;
  const pattern = new RegExp(
    `^${last
      .split(/(NNNN|\*)/)
      .map((part) => (part === 'NNNN' ? '\\d{4}' : part === '*' ? '.*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
  );
  return readdirSync(dir).some((f) => pattern.test(f));
}

describe('docs/architecture.md', () => {
  const named = pathsNamedIn(readFileSync(DOC, 'utf8'));

  it('names the layers, the rotation path and the places to add things by their paths', () => {
    // Not vacuous: every layer's folder, the engine, the registry and the migration folder.
    for (const p of ['src/core/', 'providers/', 'jobs/', 'src/services/', 'src/entry/', 'src/app/'])
      expect(named).toContain(p);
    expect(named).toContain('src/core/rotation/rotation-engine.ts');
    expect(named).toContain('providers/provider-registry.ts');
    expect(named).toContain('src/core/state/migrations/NNNN-*.sql');
    expect(named).toContain('src/core/state/state-statements.ts');
    expect(named).toContain('test/fixtures/state-schema.sql');
    expect(named).toContain('src/entry/cli/command-table.ts');
    expect(named).toContain('src/services/audit/checks/');
  });

  it('names only paths that exist in the repository', () => {
    const missing = named.filter((p) => !pathExists(ROOT, p));
    expect(missing).toEqual([]);
  });
});

describe('the architecture path checker', () => {
  it('finds paths in prose, code spans and code blocks, not in link targets', () => {
    const text = [
      'The engine `src/core/rotation/rotation-engine.ts`, adapters in providers/ and jobs/;',
      '```text',
      '  entry      src/entry/       CLI (src/entry/cli/main.ts):',
      '```',
      'See [testing](testing.md) and [x](../src/core/app.ts). Migrations: `src/core/state/migrations/NNNN-*.sql`.',
      'Not paths: rotation/, my-src/x, .dependency-cruiser.cjs.',
    ].join('\n');
    expect(pathsNamedIn(text)).toEqual([
      'src/core/rotation/rotation-engine.ts',
      'providers/',
      'jobs/',
      'src/entry/',
      'src/entry/cli/main.ts',
      'src/core/state/migrations/NNNN-*.sql',
      '.dependency-cruiser.cjs',
    ]);
  });

  it('reports a missing file, a file named as a folder, and matches NNNN-*.sql patterns', () => {
    expect(pathExists(ROOT, 'src/core/rotation/rotation-engine.ts')).toBe(true);
    expect(pathExists(ROOT, 'src/core/rotation/no-such-module.ts')).toBe(false);
    expect(pathExists(ROOT, 'src/core/app.ts/')).toBe(false);
    expect(pathExists(ROOT, 'src/core/state/migrations/NNNN-*.sql')).toBe(true);
    expect(pathExists(ROOT, 'src/core/state/migrations/NNNN-*.yaml')).toBe(false);
    expect(pathExists(ROOT, 'src/core/no-such-folder/NNNN-*.sql')).toBe(false);
  });
});
