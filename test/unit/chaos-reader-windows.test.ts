import { describe, expect, it } from 'vitest';
import { unexplained, type Refusal, type Window } from '../../bench/chaos/current-reader.js';
import { FAULT_KINDS, FaultTally } from '../../bench/chaos/fault-kinds.js';

// The chaos reader's judgement (I1 as applications see it): a refused login with the provider's
// current value is allowed only if the span from reading the value to the refusal touches a
// rotation's apply→promote window of that account.

const refusal = (account: string, readAt: number, loginAt: number): Refusal => ({
  account,
  role: 'r',
  rotationId: null,
  readAt,
  loginAt,
});

describe('chaos reader windows', () => {
  const windows = new Map<string, Window[]>([
    ['a', [{ start: 10_000, end: 11_000 }]],
    ['b', [{ start: 20_000, end: Number.POSITIVE_INFINITY }]],
  ]);

  it('a refusal inside a window, or read before promote and refused after it, is explained', () => {
    expect(
      unexplained([refusal('a', 10_100, 10_200), refusal('a', 10_900, 12_000), refusal('b', 50_000, 50_010)], windows),
    ).toEqual([]);
  });

  it('a refusal outside every window of its own account is not (with a 250 ms margin)', () => {
    const outside = [
      refusal('a', 12_000, 12_050),
      refusal('a', 9_000, 9_700),
      refusal('b', 10_100, 10_200),
      refusal('c', 1, 2),
    ];
    expect(unexplained([...outside, refusal('a', 11_200, 11_300)], windows)).toEqual(outside);
  });
});

describe('fault tally', () => {
  it('counts each kind apart and lists every kind, zeros included', () => {
    const t = new FaultTally();
    t.add('conn-limit');
    t.add('conn-limit');
    t.add('offboard-race');
    expect(t.total).toBe(3);
    const line = t.summary();
    expect(line).toMatch(/^faults by kind: crash-at-step 0, /);
    expect(line).toContain('conn-limit 2');
    expect(line).toContain('offboard-race 1');
    expect(line.split(', ')).toHaveLength(Object.keys(FAULT_KINDS).length);
  });
});
