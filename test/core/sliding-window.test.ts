/**
 * Sliding window counter (weighted two windows): the estimate is
 * `prev * (W - elapsed) / W + curr`, and a request is admitted iff estimate + cost <= limit.
 */
import { describe, expect, it } from 'vitest';
import { slidingWindow } from '../../src/core/algorithms/sliding-window/index.js';
import { MAX_WINDOW_MS } from '../../src/core/rule.js';
import { microClock, rule, runner, T0_US, us } from './harness.js';
import { createLimiter } from '../../src/index.js';

const tenPerSecond = rule({ limit: 10, windowMs: 1000, algorithm: 'sliding-window' });
const W = 1_000_000;

describe('sliding-window: within one window', () => {
  it('admits `limit` units from a fresh key; remaining counts down; reset covers both windows', () => {
    const s = runner(slidingWindow, tenPerSecond);
    for (let i = 1; i <= 10; i++) {
      expect(s.at(T0_US + 250_000)).toMatchObject({ allowed: true, limit: 10, remaining: 10 - i, resetMs: 1750 });
    }
    // Refused within the window and no previous window: wait for the window to become the previous
    // one and slide out far enough that 10 * (W - e) / W + 1 <= 10, i.e. e = W / 10.
    expect(s.at(T0_US + 300_000)).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 700 + 100, resetMs: 1700 });
  });
});

describe('sliding-window: weighted estimate across a boundary', () => {
  it('the previous window weighs fully at the boundary and slides out linearly', () => {
    const s = runner(slidingWindow, tenPerSecond);
    s.at(T0_US, 10);
    // At the boundary the estimate is 10: refused, and it takes W/10 for one unit to slide out.
    expect(s.at(T0_US + W)).toMatchObject({ allowed: false, retryAfterMs: 100, remaining: 0, resetMs: 1000 });
    expect(s.at(T0_US + W + 100_000 - 1)).toMatchObject({ allowed: false, retryAfterMs: 0.001 });
    expect(s.at(T0_US + W + 100_000)).toMatchObject({ allowed: true, remaining: 0, resetMs: 1900 });
    // Now curr = 1: the next unit needs 10 * (W - e) / W + 2 <= 10, e = 2W / 10.
    expect(s.at(T0_US + W + 150_000)).toMatchObject({ allowed: false, retryAfterMs: 50 });
    expect(s.at(T0_US + W + 200_000 - 1).allowed).toBe(false);
    expect(s.at(T0_US + W + 200_000).allowed).toBe(true);
  });

  it('remaining is the floor of what the estimate leaves', () => {
    const s = runner(slidingWindow, tenPerSecond);
    s.at(T0_US, 10);
    // 35% into the next window: estimate 6.5, so 3 units fit (3.5 floored), then 2 remain.
    const o = s.at(T0_US + W + 350_000);
    expect(o).toMatchObject({ allowed: true, remaining: 2 });
    expect(s.at(T0_US + W + 350_000, 2)).toMatchObject({ allowed: true, remaining: 0 });
    expect(s.at(T0_US + W + 350_000).allowed).toBe(false);
  });

  it('a previous window two windows back weighs nothing', () => {
    const s = runner(slidingWindow, tenPerSecond);
    s.at(T0_US, 10);
    expect(s.at(T0_US + 2 * W, 10)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('never more than `limit` per aligned window, even with an empty previous window', () => {
    const s = runner(slidingWindow, tenPerSecond);
    s.at(T0_US + W - 1, 0);
    let admitted = 0;
    for (let t = 0; t < W; t += 1000) if (s.at(T0_US + W + t).allowed) admitted++;
    expect(admitted).toBe(10);
  });

  it('a full current window waits for the next one, then for its own weight to slide out', () => {
    const s = runner(slidingWindow, tenPerSecond);
    s.at(T0_US + W, 10);
    // curr + cost > limit: in the next window, 10 * (W - e) / W + 1 <= 10 at e = W / 10.
    expect(s.at(T0_US + W + 500_000)).toMatchObject({ allowed: false, retryAfterMs: 600, resetMs: 1500 });
    expect(s.at(T0_US + 2 * W + 100_000 - 1).allowed).toBe(false);
    expect(s.at(T0_US + 2 * W + 100_000).allowed).toBe(true);
  });
});

describe('sliding-window: cost', () => {
  it('refuses a cost larger than what remains, consumes nothing, and says when it fits', () => {
    const s = runner(slidingWindow, tenPerSecond);
    s.at(T0_US, 10);
    s.at(T0_US + W + 500_000, 5); // estimate 5 + 5 = 10
    const before = s.state;
    // cost 3 needs 10 * (W - e) / W + 5 + 3 <= 10, e = 0.8 W.
    expect(s.at(T0_US + W + 500_000, 3)).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 300 });
    expect(s.state).toBe(before);
    expect(s.at(T0_US + W + 800_000 - 1, 3).allowed).toBe(false);
    expect(s.at(T0_US + W + 800_000, 3).allowed).toBe(true);
  });

  it('a cost above the limit can never pass', () => {
    const s = runner(slidingWindow, tenPerSecond);
    expect(s.at(T0_US, 11)).toMatchObject({ allowed: false, retryAfterMs: Infinity, remaining: 10 });
    expect(s.state).toBeUndefined();
  });

  it('cost 0 writes nothing', () => {
    const s = runner(slidingWindow, tenPerSecond);
    expect(s.at(T0_US, 0)).toMatchObject({ allowed: true, remaining: 10, resetMs: 0 });
    expect(s.state).toBeUndefined();
    s.at(T0_US, 4);
    const st = s.state;
    expect(s.at(T0_US + W + 500_000, 0)).toMatchObject({ allowed: true, remaining: 8, resetMs: 500 });
    expect(s.state).toBe(st);
  });
});

describe('sliding-window: extreme windows and clocks', () => {
  it('a 10-year window', () => {
    const r = rule({ limit: 2, windowMs: MAX_WINDOW_MS, algorithm: 'sliding-window' });
    const s = runner(slidingWindow, r);
    const Wus = us(MAX_WINDOW_MS);
    const start = Math.floor(T0_US / Wus) * Wus;
    expect(s.at(T0_US, 2).allowed).toBe(true);
    const o = s.at(T0_US);
    // Next window, once half of this window's 2 units slid out.
    expect(o).toMatchObject({ allowed: false, retryAfterMs: (start + Wus + Wus / 2 - T0_US) / 1000 });
    expect(s.at(start + Wus + Wus / 2 - 1).allowed).toBe(false);
    expect(s.at(start + Wus + Wus / 2).allowed).toBe(true);
  });

  it('a 1 ms window', () => {
    const s = runner(slidingWindow, rule({ limit: 1, windowMs: 1, algorithm: 'sliding-window' }));
    expect(s.at(T0_US).allowed).toBe(true);
    // Next window, once the whole unit slid out: the window after.
    expect(s.at(T0_US + 500)).toMatchObject({ allowed: false, retryAfterMs: 1.5 });
    expect(s.at(T0_US + 1999).allowed).toBe(false);
    expect(s.at(T0_US + 2000).allowed).toBe(true);
  });

  it('works from a fractional-millisecond clock through the limiter', () => {
    const clock = microClock(T0_US + 123);
    const limiter = createLimiter({ limit: 1, windowMs: 10, algorithm: 'sliding-window', clock });
    expect(limiter.consumeSync('k').allowed).toBe(true);
    const d = limiter.consumeSync('k');
    expect(d.allowed).toBe(false);
    clock.advance(d.retryAfterMs - 0.001);
    expect(limiter.consumeSync('k').allowed).toBe(false);
    clock.advance(0.001);
    expect(limiter.consumeSync('k').allowed).toBe(true);
  });

  it('a clock that steps back into the previous window admits nothing extra', () => {
    const s = runner(slidingWindow, tenPerSecond);
    expect(s.at(T0_US + W - 10, 10).allowed).toBe(true);
    // Forward a bit: the estimate is still ~10, nothing passes.
    expect(s.at(T0_US + W + 5).allowed).toBe(false);
    s.at(T0_US + 2 * W + 900_000, 10); // window C full, B's weight is 0 (B was empty)
    // Back into B, then forward into C again: nothing more may pass.
    expect(s.at(T0_US + W + 500_000).allowed).toBe(false);
    expect(s.at(T0_US + 2 * W + 900_001).allowed).toBe(false);
  });

  it('a refusal after a backward step says truthfully when to come back', () => {
    const s = runner(slidingWindow, tenPerSecond);
    s.at(T0_US + 2 * W + 500_000, 10);
    const back = s.at(T0_US + W + 500_000);
    expect(back.allowed).toBe(false);
    const at = T0_US + W + 500_000 + us(back.retryAfterMs);
    expect(s.at(at - 1).allowed).toBe(false);
    expect(s.at(at).allowed).toBe(true);
  });
});
