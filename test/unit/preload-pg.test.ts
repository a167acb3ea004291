import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/pg-fixture.js';

// src/entry/cli/preload-pg.ts in a fresh Node process (the test runner has pg loaded already):
// pg loads without Node's fetch implementation, picks its Node.js socket functions (not the
// Cloudflare ones the stand-in `navigator` could have suggested), and no `navigator` stays behind.

const PRELOAD = join(REPO_ROOT, 'dist', 'src', 'entry', 'cli', 'preload-pg.js');

/** Run an ES module snippet in a new node; returns what it printed as JSON. */
function inFreshNode(source: string): Record<string, unknown> {
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', source], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  expect(res.status, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as Record<string, unknown>;
}

const REPORT = `
  const { Socket } = await import('node:net');
  const pg = (await import('pg')).default;
  const client = new pg.Client();
  const undici = process.moduleLoadList.includes('NativeModule internal/deps/undici/undici');
  console.log(JSON.stringify({
    undici,
    navigator: typeof globalThis.navigator,
    nodeSocket: client.connection.stream instanceof Socket,
  }));`;

describe('preloadPg', () => {
  it('loads pg without undici, with its Node.js sockets, and leaves globalThis as it was', () => {
    expect(existsSync(PRELOAD), `${PRELOAD} (run npm run build)`).toBe(true);
    const before = inFreshNode(`console.log(JSON.stringify({ navigator: typeof globalThis.navigator }));`);
    const after = inFreshNode(`
      await (await import(${JSON.stringify(PRELOAD)})).preloadPg();
      ${REPORT}`);
    expect(after).toEqual({ undici: false, navigator: before.navigator, nodeSocket: true });
  });

  it('without it, pg on this Node loads undici (what the preload exists to avoid)', () => {
    const plain = inFreshNode(REPORT);
    expect(plain.nodeSocket).toBe(true);
    // Node 21+ defines navigator itself, and pg never builds a Response there.
    expect(plain.undici).toBe(plain.navigator === 'undefined');
  });
});
