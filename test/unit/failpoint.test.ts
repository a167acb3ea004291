import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { failpoint } from '../../src/core/rotation/failpoint.js';
import { REPO_ROOT } from '../support/pg-fixture.js';

// Failpoints scoped per entry (`name@account`), so one chaos worker can crash at a protocol step
// for one account and while recording a failure for another; a fired point says so on stderr.

const MODULE = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'core', 'rotation', 'failpoint.js')).href;

/** Run failpoint(name, account) for each call in a child process with PGROTATE_FAILPOINT set. */
function run(spec: string, calls: Array<[string, string]>) {
  const script = `const { failpoint } = await import(${JSON.stringify(MODULE)});
for (const [n, a] of ${JSON.stringify(calls)}) { await failpoint(n, a); process.stdout.write('passed ' + n + '@' + a + '\\n'); }`;
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, PGROTATE_FAILPOINT: spec },
    encoding: 'utf8',
  });
}

describe('failpoint', () => {
  it('an entry with @account kills only for that account, and names itself on stderr first', () => {
    const r = run('after-apply@billing,recording-failure@reports', [
      ['after-apply', 'reports'],
      ['recording-failure', 'billing'],
      ['recording-failure', 'reports'],
      ['after-apply', 'billing'],
    ]);
    expect(r.signal).toBe('SIGKILL');
    expect(r.stdout).toBe('passed after-apply@reports\npassed recording-failure@billing\n');
    expect(r.stderr).toBe('failpoint recording-failure (account reports): SIGKILL\n');
  });

  it('an entry without @account applies to every account; unset means inert', async () => {
    const r = run('after-stage', [['after-stage', 'x']]);
    expect(r.signal).toBe('SIGKILL');
    expect(r.stderr).toContain('failpoint after-stage (account x): SIGKILL');
    await expect(failpoint('after-stage', 'x', {})).resolves.toBeUndefined();
  });

  it('pause entries take @account too', async () => {
    const env = { PGROTATE_FAILPOINT: 'pause-after-apply:300@billing' };
    let t = Date.now();
    await failpoint('after-apply', 'reports', env);
    expect(Date.now() - t).toBeLessThan(250);
    t = Date.now();
    await failpoint('after-apply', 'billing', env);
    expect(Date.now() - t).toBeGreaterThanOrEqual(290);
  });
});
