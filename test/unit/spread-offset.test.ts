import { describe, expect, it } from 'vitest';
import { retryDelay } from '../../jobs/backoff.js';
import {
  SPREAD_CAP_MS,
  spreadOffset,
  spreadWindowForInterval,
  stableFraction,
} from '../../src/core/schedule/spread-offset.js';

describe('stable spread offset', () => {
  it('is stable for a name and stays inside the window', () => {
    expect(spreadOffset('billing-app', 3_600_000)).toBe(spreadOffset('billing-app', 3_600_000));
    for (let i = 0; i < 1000; i++) {
      const o = spreadOffset(`acct-${i}`, 3_600_000);
      expect(o).toBeGreaterThanOrEqual(0);
      expect(o).toBeLessThan(3_600_000);
    }
    expect(spreadOffset('x', 0)).toBe(0);
  });

  it('keeps 10,000 accounts with the same interval apart: no minute gets more than a few dozen', () => {
    const window = spreadWindowForInterval(90 * 86_400_000);
    expect(window).toBe(SPREAD_CAP_MS);
    const perMinute = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) {
      const minute = Math.floor(spreadOffset(`app-${i}`, window) / 60_000);
      perMinute.set(minute, (perMinute.get(minute) ?? 0) + 1);
    }
    // 1440 minutes for 10,000 accounts: about 7 a minute on average.
    expect(perMinute.size).toBeGreaterThan(1400);
    expect(Math.max(...perMinute.values())).toBeLessThan(25);
  });

  it('is roughly uniform', () => {
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 10_000; i++) buckets[Math.floor(stableFraction(`n${i}`) * 10)]! += 1;
    for (const b of buckets) expect(b).toBeGreaterThan(850);
  });

  it('short intervals get a tenth of the interval', () => {
    expect(spreadWindowForInterval(2000)).toBe(200);
  });
});

describe('retry backoff', () => {
  const s = { baseMs: 1000, capMs: 30_000 };
  it('grows exponentially, is capped, and jitters within the upper half', () => {
    expect(retryDelay(1, s, () => 0)).toBe(500);
    expect(retryDelay(1, s, () => 1)).toBe(1000);
    expect(retryDelay(3, s, () => 1)).toBe(4000);
    expect(retryDelay(20, s, () => 1)).toBe(30_000);
    expect(retryDelay(20, s, () => 0)).toBe(15_000);
    const many = new Set(Array.from({ length: 50 }, () => retryDelay(4, s)));
    expect(many.size).toBeGreaterThan(10);
  });
});
