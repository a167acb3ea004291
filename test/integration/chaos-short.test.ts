import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/pg-fixture.js';

// A short `npm run chaos` (3 rounds, 6 accounts) as part of the test run: the harness starts
// its own PostgreSQL, OpenBao and Redis, injects every kind of fault, checks I1–I3 with real
// logins after each round and scans for plaintext at the end. It must find no violation and
// no leak, and must really have rotated and really have injected faults.

const SCRIPT = join(REPO_ROOT, 'dist-bench', 'bench', 'chaos', 'run-chaos.js');

/** `npm test` builds dist-bench in pretest; a single-file run builds it here when stale. */
function ensureBuilt(): void {
  const sources = [join(REPO_ROOT, 'bench', 'leak-scan.ts'), ...readdirSync(join(REPO_ROOT, 'bench', 'chaos')).map((f) => join(REPO_ROOT, 'bench', 'chaos', f))];
  const built = existsSync(SCRIPT) ? statSync(SCRIPT).mtimeMs : 0;
  if (built && sources.every((s) => statSync(s).mtimeMs <= built)) return;
  const res = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.bench.json'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`tsc -p tsconfig.bench.json failed: ${res.stdout}${res.stderr}`);
}

describe('chaos (short run)', () => {
  it('3 rounds of faults: rotations happen, faults are injected, no violation, no leak', async () => {
    ensureBuilt();
    const started = Date.now();
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [SCRIPT, '--rounds', '3', '--accounts', '6'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
    });
    const context = `${stdout}\n${stderr.slice(-6000)}`;
    expect(code, context).toBe(0);
    const m = /^chaos: (\d+) rounds, (\d+) rotations, (\d+) faults, (\d+) violations$/m.exec(stdout);
    expect(m, context).not.toBeNull();
    const [, rounds, rotations, faults, violations] = (m as RegExpExecArray).map(Number);
    expect(rounds).toBe(3);
    expect(violations).toBe(0);
    expect(faults).toBeGreaterThan(0);
    expect(rotations).toBeGreaterThan(0);
    expect(stdout).toMatch(/^leaks: 0$/m);
    // Every kind of fault happened at least once.
    for (const kind of ['redis killed', 'openbao sealed', 'postgresql restarted', 'openbao requests stalled', 'openbao unreachable', 'SIGKILLed at random', 'failpoint after-']) {
      expect(stderr, `no "${kind}" fault`).toContain(kind);
    }
    console.log(`${stdout.trim()} (${((Date.now() - started) / 1000).toFixed(0)} s in the test)`);
  }, 360_000);
});
