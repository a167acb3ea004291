import { describe, expect, it } from 'vitest';
import { blankRunResult } from '../../src/core/rotation/run-result.js';
import { offboardExitCode } from '../../src/entry/cli/commands/offboard-command.js';
import { offboardStatus } from '../../src/entry/http/api-routes.js';
import type { OffboardSummary } from '../../src/services/offboard/offboard-principal.js';

// What an offboarding's outcome answers (issue 24, item 3): the HTTP status of POST /v1/offboard
// and the exit code of `pgrotate offboard`. A request satisfied by another rotation is a success;
// only accounts still held elsewhere are "busy"; a failed rotation is a failure, never a 500.

function summary(outcomes: Array<[string, 'succeeded' | 'skipped' | 'busy' | 'failed']>): OffboardSummary {
  const results = outcomes.map(([account, outcome]) => blankRunResult(account, 'main', { outcome }));
  const ok = (o: string) => o === 'succeeded' || o === 'skipped';
  return {
    principal: 'p',
    rotated: outcomes.filter(([, o]) => ok(o)).map(([a]) => a),
    failed: outcomes.filter(([, o]) => !ok(o)).map(([a]) => a),
    sessionsEnded: null,
    results,
  };
}

describe('offboarding outcome codes', () => {
  it.each([
    [
      'all rotated',
      [
        ['a', 'succeeded'],
        ['b', 'succeeded'],
      ],
      200,
      0,
    ],
    [
      'satisfied by another rotation',
      [
        ['a', 'skipped'],
        ['b', 'succeeded'],
      ],
      200,
      0,
    ],
    ['nothing to rotate', [], 200, 0],
    [
      'only busy elsewhere',
      [
        ['a', 'busy'],
        ['b', 'skipped'],
      ],
      409,
      3,
    ],
    [
      'a rotation failed',
      [
        ['a', 'failed'],
        ['b', 'succeeded'],
      ],
      502,
      1,
    ],
    [
      'failed and busy',
      [
        ['a', 'failed'],
        ['b', 'busy'],
      ],
      502,
      1,
    ],
  ] as const)('%s: HTTP %i, exit %i', (_what, outcomes, status, exit) => {
    const s = summary(outcomes.map(([a, o]) => [a, o]));
    expect(offboardStatus(s)).toBe(status);
    expect(offboardExitCode(s)).toBe(exit);
  });

  it('a rotation that succeeded but did not end the sessions asked for counts as failed (502, exit 1)', () => {
    const s = summary([['a', 'succeeded']]);
    s.rotated = [];
    s.failed = ['a'];
    expect(offboardStatus(s)).toBe(502);
    expect(offboardExitCode(s)).toBe(1);
  });
});
