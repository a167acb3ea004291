import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureBenchBuilt, runNodeScript } from '../support/run-script.js';
import { REPO_ROOT } from '../support/pg-fixture.js';

// A very short `npm run soak` in the test run, so the harness is known to work: it starts its
// own PostgreSQL, runs the real `pgrotate worker` CLI on a 10 s schedule, and must report real
// rotations with their lateness and the worker's RSS. (The figures themselves are judged by the
// 20-minute run in docs/benchmarks.md, not here: this machine may be busy.)

const SCRIPT = join(REPO_ROOT, 'dist-bench', 'bench', 'soak', 'run-soak.js');
const dir = mkdtempSync(join(tmpdir(), 'pgrotate-soak-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface SoakSummary {
  accounts: number;
  rotations: { done: number; due: number; failed: number };
  latenessS: { n: number; p50: number; p99: number; max: number };
  runtimeS: { n: number };
  rssMb: { perMinute: Array<{ minute: number; mb: number | null }>; peak: number; slopeMbPerMinAfterWarmup: number };
  workerExitedEarly: boolean;
}

describe('soak harness (short run)', () => {
  it('runs a real worker for 20 s and reports rotations, lateness and RSS', async () => {
    ensureBenchBuilt(REPO_ROOT, SCRIPT);
    const jsonFile = join(dir, 'soak.json');
    const { code, stdout, stderr } = await runNodeScript(
      SCRIPT,
      ['--minutes', '0.34', '--accounts', '3', '--every', '10s', '--tick', '2s', '--json', jsonFile],
      REPO_ROOT,
    );
    const context = `${stdout}\n${stderr.slice(-4000)}`;
    expect(code, context).toBe(0);
    expect(stdout, context).toMatch(/^minute [\d.]+: rotations \d+ done \/ \d+ due .*RSS \d+ MB$/m);
    expect(stdout, context).toMatch(/^soak: \d+ rotations done \/ \d+ due, 0 failed; lateness p50 /m);
    const summary = JSON.parse(readFileSync(jsonFile, 'utf8')) as SoakSummary;
    expect(summary.workerExitedEarly).toBe(false);
    expect(summary.accounts).toBe(3);
    // Every account is first due within a second of the worker's start: each rotated at least once.
    expect(summary.rotations.done, context).toBeGreaterThanOrEqual(3);
    expect(summary.rotations.due).toBeGreaterThanOrEqual(summary.rotations.done);
    expect(summary.rotations.failed).toBe(0);
    expect(summary.latenessS.n).toBeGreaterThanOrEqual(3);
    expect(summary.latenessS.max).toBeGreaterThanOrEqual(summary.latenessS.p50);
    expect(summary.runtimeS.n).toBeGreaterThanOrEqual(3);
    expect(summary.rssMb.peak).toBeGreaterThan(30);
    expect(summary.rssMb.perMinute.length).toBeGreaterThanOrEqual(1);
    expect(Number.isFinite(summary.rssMb.slopeMbPerMinAfterWarmup)).toBe(true);
  }, 90_000);
});
