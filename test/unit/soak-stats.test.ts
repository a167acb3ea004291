import { describe, expect, it } from 'vitest';
import { percentiles, slope } from '../../bench/soak/soak-stats.js';

describe('soak report arithmetic', () => {
  it('nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentiles(values)).toEqual({ n: 100, p50: 50, p99: 99, max: 100 });
    expect(percentiles([3])).toEqual({ n: 1, p50: 3, p99: 3, max: 3 });
    expect(percentiles([])).toEqual({ n: 0, p50: 0, p99: 0, max: 0 });
  });

  it('least-squares slope: flat, rising, noisy', () => {
    expect(slope([1, 2, 3, 4].map((x) => ({ x, y: 150 })))).toBe(0);
    expect(slope([0, 1, 2, 3].map((x) => ({ x, y: 100 + 2 * x })))).toBeCloseTo(2, 10);
    expect(
      slope([
        { x: 0, y: 10 },
        { x: 1, y: 12 },
        { x: 2, y: 10 },
        { x: 3, y: 12 },
      ]),
    ).toBeCloseTo(0.4, 10);
    expect(slope([{ x: 1, y: 5 }])).toBe(0);
  });
});
