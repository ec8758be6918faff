/**
 * Fixed window: at most `limit` units per epoch-aligned window; a window counts [start, start + W).
 * Refused requests are not counted.
 */
import { describe, expect, it } from 'vitest';
import { fixedWindow } from '../../src/core/algorithms/fixed-window/index.js';
import { MAX_WINDOW_MS } from '../../src/core/rule.js';
import { createLimiter } from '../../src/index.js';
import { microClock, rule, runner, T0_US, us } from './harness.js';

const threePerSecond = rule({ limit: 3, windowMs: 1000, algorithm: 'fixed-window' });
const W = 1_000_000;

describe('fixed-window: one window', () => {
  it('admits `limit` units, with remaining counting down and resetMs to the window end', () => {
    const f = runner(fixedWindow, threePerSecond);
    expect(f.at(T0_US + 250_000)).toMatchObject({ allowed: true, limit: 3, remaining: 2, resetMs: 750, retryAfterMs: 0 });
    expect(f.at(T0_US + 500_000)).toMatchObject({ allowed: true, remaining: 1, resetMs: 500 });
    expect(f.at(T0_US + 500_000)).toMatchObject({ allowed: true, remaining: 0, resetMs: 500 });
    expect(f.at(T0_US + 600_000)).toMatchObject({ allowed: false, remaining: 0, resetMs: 400, retryAfterMs: 400 });
  });

  it('the last µs of a window still belongs to it; the boundary itself starts a new one', () => {
    const f = runner(fixedWindow, threePerSecond);
    f.at(T0_US, 3);
    expect(f.at(T0_US + W - 1)).toMatchObject({ allowed: false, retryAfterMs: 0.001, resetMs: 0.001 });
    expect(f.at(T0_US + W)).toMatchObject({ allowed: true, remaining: 2, resetMs: 1000 });
    expect(f.at(T0_US + W + 1)).toMatchObject({ allowed: true, remaining: 1, resetMs: 999.999 });
  });

  it('windows are aligned to the epoch, not to the first request', () => {
    const f = runner(fixedWindow, threePerSecond);
    f.at(T0_US + W - 1, 3); // fills the window that ends 1 µs later
    expect(f.at(T0_US + W).allowed).toBe(true);
  });

  it('a window that is two or more windows old is forgotten', () => {
    const f = runner(fixedWindow, threePerSecond);
    f.at(T0_US, 3);
    expect(f.at(T0_US + 5 * W + 123, 3).allowed).toBe(true);
  });

  it('up to 2 * limit across a boundary (the documented weakness)', () => {
    const f = runner(fixedWindow, threePerSecond);
    expect(f.at(T0_US + W - 1, 3).allowed).toBe(true);
    expect(f.at(T0_US + W, 3).allowed).toBe(true);
  });
});

describe('fixed-window: cost', () => {
  it('refuses a cost larger than what remains, consumes nothing, and retries at the boundary', () => {
    const f = runner(fixedWindow, threePerSecond);
    f.at(T0_US + 100_000, 2);
    const before = f.state;
    expect(f.at(T0_US + 200_000, 2)).toMatchObject({ allowed: false, remaining: 1, retryAfterMs: 800 });
    expect(f.state).toBe(before);
    expect(f.at(T0_US + 200_000, 1)).toMatchObject({ allowed: true, remaining: 0 });
    expect(f.at(T0_US + W, 2).allowed).toBe(true);
  });

  it('a cost above the limit can never pass', () => {
    const f = runner(fixedWindow, threePerSecond);
    expect(f.at(T0_US, 4)).toMatchObject({ allowed: false, retryAfterMs: Infinity, remaining: 3 });
    expect(f.state).toBeUndefined();
  });

  it('cost 0 writes nothing and reports a fresh key as fully reset', () => {
    const f = runner(fixedWindow, threePerSecond);
    expect(f.at(T0_US + 1, 0)).toMatchObject({ allowed: true, remaining: 3, resetMs: 0 });
    expect(f.state).toBeUndefined();
    f.at(T0_US + 1, 1);
    const s = f.state;
    expect(f.at(T0_US + 2, 0)).toMatchObject({ allowed: true, remaining: 2 });
    expect(f.state).toBe(s);
  });
});

describe('fixed-window: extreme windows and clocks', () => {
  it('a 10-year window is epoch-aligned: it ends at the next multiple of 10 years since 1970', () => {
    const r = rule({ limit: 1, windowMs: MAX_WINDOW_MS, algorithm: 'fixed-window' });
    const f = runner(fixedWindow, r);
    const Wus = us(MAX_WINDOW_MS);
    const end = (Math.floor(T0_US / Wus) + 1) * Wus;
    expect(f.at(T0_US).allowed).toBe(true);
    expect(f.at(T0_US)).toMatchObject({ allowed: false, retryAfterMs: (end - T0_US) / 1000 });
    expect(f.at(end - 1).allowed).toBe(false);
    expect(f.at(end).allowed).toBe(true);
  });

  it('a 1 ms window', () => {
    const f = runner(fixedWindow, rule({ limit: 2, windowMs: 1, algorithm: 'fixed-window' }));
    expect(f.at(T0_US + 10, 2).allowed).toBe(true);
    expect(f.at(T0_US + 999)).toMatchObject({ allowed: false, retryAfterMs: 0.001 });
    expect(f.at(T0_US + 1000).allowed).toBe(true);
  });

  it('works from a fractional-millisecond clock through the limiter', () => {
    const clock = microClock(T0_US + 999_500); // 0.5 ms before a boundary
    const limiter = createLimiter({ limit: 1, windowMs: 1000, algorithm: 'fixed-window', clock });
    expect(limiter.consumeSync('k').allowed).toBe(true);
    expect(limiter.consumeSync('k')).toMatchObject({ allowed: false, retryAfterMs: 0.5 });
    clock.advance(0.5);
    expect(limiter.consumeSync('k').allowed).toBe(true);
  });

  it('a clock that steps back into the previous window admits nothing extra', () => {
    const f = runner(fixedWindow, threePerSecond);
    expect(f.at(T0_US + W - 10, 3).allowed).toBe(true); // window A full
    expect(f.at(T0_US + W + 5, 3).allowed).toBe(true); // window B full
    // Back into A, then forward into B again: both windows are full, nothing may pass.
    const back = f.at(T0_US + W - 5);
    expect(back.allowed).toBe(false);
    expect(back.retryAfterMs).toBeGreaterThan(0);
    expect(f.at(T0_US + W + 6).allowed).toBe(false);
    expect(f.at(T0_US + 2 * W).allowed).toBe(true);
  });

  it('a refusal after a backward step says truthfully when to come back', () => {
    const f = runner(fixedWindow, threePerSecond);
    f.at(T0_US + W + 5, 3);
    const back = f.at(T0_US + W - 5);
    expect(back.allowed).toBe(false);
    const at = T0_US + W - 5 + us(back.retryAfterMs);
    expect(f.at(at - 1).allowed).toBe(false);
    expect(f.at(at).allowed).toBe(true);
  });
});
