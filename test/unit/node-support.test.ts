import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MIN_NODE_MAJOR, unsupportedNodeNotice } from '../../src/entry/cli/node-support.js';
import { REPO_ROOT } from '../support/pg-fixture.js';

describe('unsupportedNodeNotice', () => {
  it('is the engines.node floor of package.json', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(pkg.engines.node).toBe(`>=${MIN_NODE_MAJOR}`);
  });

  it('says nothing on a supported Node (22, 24, later)', () => {
    for (const v of ['22.0.0', '22.23.5', '24.22.3', 'v24.1.0', '26.0.0'])
      expect(unsupportedNodeNotice(v), v).toBeNull();
    expect(unsupportedNodeNotice(process.versions.node), 'the Node running the tests').toBeNull();
  });

  it('on Node 20 or older: one line naming the version, what is needed and what to do', () => {
    for (const v of ['20.20.2', 'v18.19.1', '21.7.3']) {
      const notice = unsupportedNodeNotice(v) ?? '';
      expect(notice, v).toContain(`Node.js v${v.replace(/^v/, '')} is not supported`);
      expect(notice).toContain('>=22');
      expect(notice).toContain('Node 24');
      expect(notice).toContain('scripts/node-runtime.sh 24');
      expect(notice.endsWith('\n') && notice.indexOf('\n') === notice.length - 1, 'exactly one line').toBe(true);
    }
  });
});
