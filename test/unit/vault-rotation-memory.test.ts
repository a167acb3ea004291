import { describe, expect, it } from 'vitest';
import { RotationMemory } from '../../providers/vault-rotation-memory.js';
import { sampleValue } from '../conformance/provider-conformance.js';

// What a vault provider instance remembers between a rotation's calls: used once by promote,
// dropped on discard, on a failed stage write, by age and by count, so the staged passwords it
// holds stay bounded by the rotations in flight.

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('vault rotation memory', () => {
  it('remembers the current version and the staged value until a promote takes them', () => {
    const m = new RotationMemory();
    const v = sampleValue();
    m.sawCurrent('pg/a', 3);
    m.staged('pg/a', v);
    expect(m.take('pg/a')).toEqual({ currentVersion: 3, staged: v });
    expect(m.take('pg/a')).toBeUndefined();
    expect(m.size).toBe(0);
  });

  it('a failed stage forgets the staged value but keeps the version; discard forgets both', () => {
    const m = new RotationMemory();
    m.sawCurrent('pg/a', 0);
    m.staged('pg/a', sampleValue());
    m.unstage('pg/a');
    expect(m.take('pg/a')).toEqual({ currentVersion: 0 });
    m.staged('pg/b', sampleValue());
    m.unstage('pg/b');
    expect(m.size).toBe(0);
    m.sawCurrent('pg/c', 1);
    m.staged('pg/c', sampleValue());
    m.forget('pg/c');
    expect(m.take('pg/c')).toBeUndefined();
  });

  it('entries older than the TTL are gone, and the oldest go when the count limit is reached', () => {
    const c = clock();
    const m = new RotationMemory({ ttlMs: 1000, max: 3 }, c.now);
    m.staged('pg/old', sampleValue());
    c.advance(1001);
    expect(m.take('pg/old')).toBeUndefined();

    m.staged('pg/stale', sampleValue());
    c.advance(600);
    m.sawCurrent('pg/fresh', 1);
    c.advance(600);
    // Inserting sweeps what has expired from the front, without a lookup of it.
    m.sawCurrent('pg/newer', 2);
    expect(m.size).toBe(2);

    for (let i = 0; i < 10; i++) m.sawCurrent(`pg/n${i}`, i);
    expect(m.size).toBe(3);
    expect(m.take('pg/n9')).toEqual({ currentVersion: 9 });
    expect(m.take('pg/n6')).toBeUndefined();
  });

  it('an update moves the entry to the back, so a secret in use is not the one evicted', () => {
    const c = clock();
    const m = new RotationMemory({ ttlMs: 60_000, max: 2 }, c.now);
    const v = sampleValue();
    m.sawCurrent('pg/a', 1);
    m.sawCurrent('pg/b', 1);
    m.staged('pg/a', v);
    m.sawCurrent('pg/c', 1);
    expect(m.take('pg/b')).toBeUndefined();
    expect(m.take('pg/a')).toEqual({ currentVersion: 1, staged: v });
  });
});
