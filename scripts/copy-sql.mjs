// Part of `npm run build` (and `build:bench`, with the output directory as argument: dist-bench/):
// tsc compiles only TypeScript, so this copies the .sql files of src/ (the state migrations) to
// the same place under dist/ (or the directory given), where the compiled code reads them
// (new URL('./migrations/', import.meta.url)). A .sql file under dist/ with no source any more is
// removed, so a renamed or dropped migration cannot linger in a build directory.
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TREES = ['src', 'providers', 'jobs'];
const OUT = process.argv[2] ?? 'dist';

/** Relative paths of the .sql files under `dir` (none when it does not exist). */
function sqlFiles(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true, recursive: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.sql'))
    .map((e) => relative(dir, join(e.parentPath ?? e.path, e.name)));
}

let copied = 0;
for (const tree of TREES) {
  const from = join(ROOT, tree);
  const to = join(ROOT, OUT, tree);
  const wanted = new Set(sqlFiles(from));
  for (const stale of sqlFiles(to)) if (!wanted.has(stale)) rmSync(join(to, stale));
  for (const file of wanted) {
    mkdirSync(dirname(join(to, file)), { recursive: true });
    copyFileSync(join(from, file), join(to, file));
    copied++;
  }
}
if (copied === 0) throw new Error('copy-sql: no .sql file found under src/ (the state migrations)');
console.log(`copy-sql: ${copied} .sql file(s) copied to ${OUT}/`);
