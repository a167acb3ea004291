import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// Issue 15 item 4: imports point one way (core, adapters, services, the composition root, entry
// points) and there is no cycle. `npm test` runs `npm run deps` on the real tree; this file proves
// each rule of .dependency-cruiser.cjs fails on a planted violation, so a rule that stopped
// matching (a renamed folder, say) cannot pass silently.

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEPCRUISE = join(REPO, 'node_modules', '.bin', 'depcruise');
const scratch: string[] = [];

afterAll(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

/** Run the project's rules over a tree of `files` (path → source), in a scratch directory. */
function cruise(files: Record<string, string>): { code: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-layers-'));
  scratch.push(dir);
  copyFileSync(join(REPO, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
  );
  const all: Record<string, string> = {
    'src/core/base.ts': 'export const base = 1;\n',
    'providers/store.ts': "import { base } from '../src/core/base.js';\nexport const store = base;\n",
    'providers/one/one-io.ts': "import { store } from '../store.js';\nexport const io = store;\n",
    'providers/one/one-store.ts': "import { io } from './one-io.js';\nexport const one = io;\n",
    'jobs/queue.ts': "import { base } from '../src/core/base.js';\nexport const queue = base;\n",
    'src/services/service.ts': "import { queue } from '../../jobs/queue.js';\nexport const service = queue;\n",
    'src/app/root.ts':
      "import { store } from '../../providers/store.js';\nimport { service } from '../services/service.js';\nexport const root = store + service;\n",
    'src/entry/main.ts': "import { root } from '../app/root.js';\nexport const main = root;\n",
    ...files,
  };
  for (const [path, text] of Object.entries(all)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const r = spawnSync(DEPCRUISE, ['src', 'providers', 'jobs', '--config', '.dependency-cruiser.cjs'], {
    cwd: dir,
    encoding: 'utf8',
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('import layers (dependency-cruiser)', () => {
  it('the real source tree has no upward import and no cycle', () => {
    const r = spawnSync(DEPCRUISE, ['src', 'providers', 'jobs', '--config', '.dependency-cruiser.cjs'], {
      cwd: REPO,
      encoding: 'utf8',
    });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  });

  it('a layered tree that follows the rules passes', () => {
    const r = cruise({});
    expect(r.code, r.out).toBe(0);
  });

  const planted: Array<[string, Record<string, string>, string]> = [
    [
      'core importing a service',
      { 'src/core/bad.ts': "import { service } from '../services/service.js';\nexport const bad = service;\n" },
      'core-imports-only-core',
    ],
    [
      'core importing an adapter, type only',
      {
        'src/core/bad.ts': "import type { store } from '../../providers/store.js';\nexport type Bad = typeof store;\n",
      },
      'core-imports-only-core',
    ],
    [
      'an adapter importing the composition root',
      { 'jobs/bad.ts': "import { root } from '../src/app/root.js';\nexport const bad = root;\n" },
      'adapters-import-only-core',
    ],
    [
      'a store adapter importing the queue',
      { 'providers/bad.ts': "import { queue } from '../jobs/queue.js';\nexport const bad = queue;\n" },
      'store-and-queue-adapters-apart',
    ],
    [
      'one store folder importing another',
      { 'providers/two/two-store.ts': "import { one } from '../one/one-store.js';\nexport const two = one;\n" },
      'stores-apart',
    ],
    [
      'a service importing an entry point',
      { 'src/services/bad.ts': "import { main } from '../entry/main.js';\nexport const bad = main;\n" },
      'services-below-app-and-entry',
    ],
    [
      'an entry point importing a store adapter',
      { 'src/entry/bad.ts': "import { store } from '../../providers/store.js';\nexport const bad = store;\n" },
      'only-the-root-knows-adapters',
    ],
    [
      'a type-level cycle inside core',
      {
        'src/core/p.ts': "import type { Q } from './q.js';\nexport interface P { q?: Q }\n",
        'src/core/q.ts': "import type { P } from './p.js';\nexport interface Q { p?: P }\n",
      },
      'no-cycle',
    ],
  ];
  it.each(planted)('fails on %s', (_what, files, rule) => {
    const r = cruise(files);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain(rule);
  });
});
