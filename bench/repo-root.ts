import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root with a built CLI (dist/src/entry/cli/main.js), found upward from this file (source or dist-bench). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'dist', 'src', 'entry', 'cli', 'main.js'))) {
    const up = dirname(dir);
    if (up === dir)
      throw new Error('cannot find the repository root with a built dist/src/entry/cli/main.js (run npm run build)');
    dir = up;
  }
  return dir;
}
