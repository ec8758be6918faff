/**
 * Exact sliding log: a unit admitted at `t` counts during [t, t + W); at most `limit` units in any
 * interval of length W. Decisions equal a brute-force count over every admitted unit.
 */
import { describe, expect, it } from 'vitest';
import { slidingLog } from '../../src/core/algorithms/sliding-log/index.js';
import { MAX_SLIDING_LOG_LIMIT, MAX_WINDOW_MS } from '../../src/core/rule.js';
import { createLimiter } from '../../src/index.js';
import { microClock, rule, runner, T0_US, us } from './harness.js';

const threePerSecond = rule({ limit: 3, windowMs: 1000, algorithm: 'sliding-log' });
const W = 1_000_000;

describe('sliding-log: exactness', () => {
  it('counts each unit for exactly W after it was admitted', () => {
    const l = runner(slidingLog, threePerSecond);
    expect(l.at(T0_US)).toMatchObject({ allowed: true, remaining: 2, resetMs: 1000 });
    expect(l.at(T0_US + 100_000)).toMatchObject({ allowed: true, remaining: 1, resetMs: 1000 });
    expect(l.at(T0_US + 200_000)).toMatchObject({ allowed: true, remaining: 0, resetMs: 1000 });
    // Full: the oldest unit (at T0) frees its place at T0 + W exactly.
    expect(l.at(T0_US + 300_000)).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 700, resetMs: 900 });
    expect(l.at(T0_US + W - 1)).toMatchObject({ allowed: false, retryAfterMs: 0.001 });
    expect(l.at(T0_US + W)).toMatchObject({ allowed: true, remaining: 0 });
    // Next: the unit at T0 + 100 ms.
    expect(l.at(T0_US + W + 1)).toMatchObject({ allowed: false, retryAfterMs: 99.999 });
    expect(l.at(T0_US + W + 100_000).allowed).toBe(true);
  });

  it('unlike a window counter, never admits 2 * limit across a boundary', () => {
    const l = runner(slidingLog, threePerSecond);
    l.at(T0_US + W - 1, 3);
    expect(l.at(T0_US + W).allowed).toBe(false);
    expect(l.at(T0_US + 2 * W - 2).allowed).toBe(false);
    expect(l.at(T0_US + 2 * W - 1, 3).allowed).toBe(true);
  });

  it('matches a brute-force count over every admitted unit', () => {
    const r = rule({ limit: 7, windowMs: 50, algorithm: 'sliding-log' });
    const l = runner(slidingLog, r);
    const admitted: number[] = [];
    let now = T0_US;
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 3000; i++) {
      now += rand(9000);
      const cost = rand(4);
      const live = admitted.filter((t) => t > now - r.windowUs).length;
      const o = l.at(now, cost);
      expect(o.allowed).toBe(live + cost <= 7);
      if (o.allowed) for (let k = 0; k < cost; k++) admitted.push(now);
      expect(o.remaining).toBe(o.allowed ? 7 - live - cost : 7 - live);
    }
  });
});

describe('sliding-log: cost', () => {
  it('a cost larger than what remains waits until enough units expire, consuming nothing', () => {
    const l = runner(slidingLog, threePerSecond);
    l.at(T0_US);
    l.at(T0_US + 100_000);
    const before = l.state;
    // 1 remains; cost 3 needs the first two units gone: the one at T0 + 100 ms expires last.
    expect(l.at(T0_US + 200_000, 3)).toMatchObject({ allowed: false, remaining: 1, retryAfterMs: 900 });
    expect(l.state).toBe(before);
    expect(l.at(T0_US + W + 100_000 - 1, 3).allowed).toBe(false);
    expect(l.at(T0_US + W + 100_000, 3)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('a cost above the limit can never pass', () => {
    const l = runner(slidingLog, threePerSecond);
    expect(l.at(T0_US, 4)).toMatchObject({ allowed: false, retryAfterMs: Infinity, remaining: 3, resetMs: 0 });
    l.at(T0_US, 1);
    expect(l.at(T0_US + 10, 4)).toMatchObject({ allowed: false, retryAfterMs: Infinity, remaining: 2 });
  });

  it('cost 0 adds no entry', () => {
    const l = runner(slidingLog, threePerSecond);
    expect(l.at(T0_US, 0)).toMatchObject({ allowed: true, remaining: 3, resetMs: 0 });
    expect(l.state).toBeUndefined();
    l.at(T0_US, 2);
    expect(l.at(T0_US + 500_000, 0)).toMatchObject({ allowed: true, remaining: 1, resetMs: 500 });
    expect(l.state).toEqual([T0_US, T0_US]);
  });

  it('a weighted unit holds `cost` places until it expires', () => {
    const l = runner(slidingLog, threePerSecond);
    l.at(T0_US, 2);
    expect(l.at(T0_US + 1, 2)).toMatchObject({ allowed: false, retryAfterMs: 999.999 });
    expect(l.at(T0_US + W, 3).allowed).toBe(true);
  });
});

describe('sliding-log: limits, extreme windows and clocks', () => {
  it('accepts limits up to MAX_SLIDING_LOG_LIMIT and refuses above', () => {
    expect(rule({ limit: MAX_SLIDING_LOG_LIMIT, windowMs: 1000, algorithm: 'sliding-log' }).limit).toBe(10_000);
    expect(() => rule({ limit: MAX_SLIDING_LOG_LIMIT + 1, windowMs: 1000, algorithm: 'sliding-log' })).toThrow(/limit/);
  });

  it('a 10-year window', () => {
    const l = runner(slidingLog, rule({ limit: 1, windowMs: MAX_WINDOW_MS, algorithm: 'sliding-log' }));
    expect(l.at(T0_US).allowed).toBe(true);
    expect(l.at(T0_US + 1)).toMatchObject({ allowed: false, retryAfterMs: MAX_WINDOW_MS - 0.001 });
    expect(l.at(T0_US + us(MAX_WINDOW_MS) - 1).allowed).toBe(false);
    expect(l.at(T0_US + us(MAX_WINDOW_MS)).allowed).toBe(true);
  });

  it('a 1 ms window', () => {
    const l = runner(slidingLog, rule({ limit: 2, windowMs: 1, algorithm: 'sliding-log' }));
    l.at(T0_US + 500, 2);
    expect(l.at(T0_US + 1499)).toMatchObject({ allowed: false, retryAfterMs: 0.001 });
    expect(l.at(T0_US + 1500, 2).allowed).toBe(true);
  });

  it('works from a fractional-millisecond clock through the limiter', () => {
    const clock = microClock(T0_US + 777);
    const limiter = createLimiter({ limit: 2, windowMs: 3.5, algorithm: 'sliding-log', clock });
    expect(limiter.consumeSync('k', 2).allowed).toBe(true);
    expect(limiter.consumeSync('k')).toMatchObject({ allowed: false, retryAfterMs: 3.5 });
    clock.advance(3.499);
    expect(limiter.consumeSync('k').allowed).toBe(false);
    clock.advance(0.001);
    expect(limiter.consumeSync('k').allowed).toBe(true);
  });

  it('a clock that steps backwards admits nothing extra and keeps the log in order', () => {
    const l = runner(slidingLog, threePerSecond);
    l.at(T0_US + 500_000, 2);
    // 400 ms back: the units stamped in the future still count.
    expect(l.at(T0_US + 100_000)).toMatchObject({ allowed: true, remaining: 0 });
    expect(l.at(T0_US + 100_000).allowed).toBe(false);
    const log = l.state ?? [];
    expect([...log].sort((a, b) => a - b)).toEqual(log);
    // Every unit counts until at least W after the latest time the log has seen.
    expect(l.at(T0_US + W + 500_000 - 1).allowed).toBe(false);
  });

  it('a refusal after a backward step says truthfully when to come back', () => {
    const l = runner(slidingLog, threePerSecond);
    l.at(T0_US + 500_000, 3);
    const back = l.at(T0_US + 100_000);
    expect(back.allowed).toBe(false);
    const at = T0_US + 100_000 + us(back.retryAfterMs);
    expect(l.at(at - 1).allowed).toBe(false);
    expect(l.at(at).allowed).toBe(true);
  });
});
