/**
 * Generations: a bounded map with approximate-LRU eviction by two generations. At most `capacity`
 * entries; what is written back (promoted) survives a rotation, what is not is dropped.
 */
import { describe, expect, it } from 'vitest';
import { Generations } from '../../src/stores/generations.js';

describe('Generations', () => {
  it('gets what was set, from either generation', () => {
    const g = new Generations<number>(4);
    g.set('a', 1);
    g.set('b', 2);
    g.set('c', 3); // rotation: a, b become old
    expect(g.get('a')).toBe(1);
    expect(g.isOld('a')).toBe(true);
    expect(g.isOld('c')).toBe(false);
    expect(g.get('zzz')).toBeUndefined();
  });

  it('never holds more than capacity entries, however many keys pass', () => {
    const g = new Generations<number>(1000);
    for (let i = 0; i < 100_000; i++) {
      g.set(`k${i}`, i);
      expect(g.size).toBeLessThanOrEqual(1000);
    }
    // The most recent writes are still there.
    expect(g.get('k99999')).toBe(99_999);
    expect(g.get('k0')).toBeUndefined();
  });

  it('an old entry written back (promoted) survives the next rotation; one not written back is dropped', () => {
    const g = new Generations<string>(4);
    g.set('hot', 'h');
    g.set('cold', 'c');
    g.set('x1', '1'); // rotation: hot, cold old
    g.set('hot', g.get('hot') as string); // promote
    g.set('x2', '2'); // rotation: young {x1, hot} becomes old; cold dropped
    expect(g.get('hot')).toBe('h');
    expect(g.get('cold')).toBeUndefined();
  });

  it('delete removes from both generations; clear empties', () => {
    const g = new Generations<number>(4);
    g.set('a', 1);
    g.set('b', 2);
    g.set('c', 3);
    g.set('a', 4); // a in both generations
    g.delete('a');
    expect(g.get('a')).toBeUndefined();
    g.clear();
    expect(g.size).toBe(0);
    expect(g.get('c')).toBeUndefined();
  });

  it('falsy values are values', () => {
    const g = new Generations<number>(2);
    g.set('zero', 0);
    expect(g.get('zero')).toBe(0);
  });

  it.each([[0], [1], [Number.NaN], [2.5], [-4]])('capacity %s is refused (it could not stay bounded)', (capacity) => {
    expect(() => new Generations(capacity)).toThrow(RangeError);
  });

  it('capacity 2 holds at most 2', () => {
    const g = new Generations<number>(2);
    for (let i = 0; i < 10; i++) g.set(`k${i}`, i);
    expect(g.size).toBeLessThanOrEqual(2);
  });
});
