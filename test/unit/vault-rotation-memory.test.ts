import { describe, expect, it } from 'vitest';
import { RotationMemory } from '../../providers/vault/vault-rotation-memory.js';

// What a vault provider instance remembers between a rotation's calls: the current version its
// last getCurrent saw, used once by promote, dropped on discard, by age and by count. It holds
// no password: the value to promote comes from the caller (the engine's rotation).

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('vault rotation memory', () => {
  it('remembers the current version until a promote takes it', () => {
    const m = new RotationMemory();
    m.sawCurrent('pg/a', 3);
    expect(m.take('pg/a')).toBe(3);
    expect(m.take('pg/a')).toBeUndefined();
    expect(m.size).toBe(0);
  });

  it('a version of 0 (no current value yet) is remembered; discard forgets it', () => {
    const m = new RotationMemory();
    m.sawCurrent('pg/a', 0);
    expect(m.take('pg/a')).toBe(0);
    m.sawCurrent('pg/c', 1);
    m.forget('pg/c');
    expect(m.take('pg/c')).toBeUndefined();
    expect(m.size).toBe(0);
  });

  it('entries older than the TTL are gone, and the oldest go when the count limit is reached', () => {
    const c = clock();
    const m = new RotationMemory({ ttlMs: 1000, max: 3 }, c.now);
    m.sawCurrent('pg/old', 1);
    c.advance(1001);
    expect(m.take('pg/old')).toBeUndefined();

    m.sawCurrent('pg/stale', 1);
    c.advance(600);
    m.sawCurrent('pg/fresh', 1);
    c.advance(600);
    // Inserting sweeps what has expired from the front, without a lookup of it.
    m.sawCurrent('pg/newer', 2);
    expect(m.size).toBe(2);

    for (let i = 0; i < 10; i++) m.sawCurrent(`pg/n${i}`, i);
    expect(m.size).toBe(3);
    expect(m.take('pg/n9')).toBe(9);
    expect(m.take('pg/n6')).toBeUndefined();
  });

  it('an update moves the entry to the back, so a secret in use is not the one evicted', () => {
    const c = clock();
    const m = new RotationMemory({ ttlMs: 60_000, max: 2 }, c.now);
    m.sawCurrent('pg/a', 1);
    m.sawCurrent('pg/b', 1);
    m.sawCurrent('pg/a', 2);
    m.sawCurrent('pg/c', 1);
    expect(m.take('pg/b')).toBeUndefined();
    expect(m.take('pg/a')).toBe(2);
  });
});
