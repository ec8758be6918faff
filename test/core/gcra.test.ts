/**
 * GCRA / token bucket: `burst` units at once from a full bucket, refilled at `limit` per `windowMs`,
 * one number (the theoretical arrival time) per key, all times in integer µs.
 */
import { describe, expect, it } from 'vitest';
import { gcra } from '../../src/core/algorithms/gcra/index.js';
import { MAX_WINDOW_MS } from '../../src/core/rule.js';
import { createLimiter } from '../../src/index.js';
import { microClock, rule, runner, T0_US, us } from './harness.js';

// 10 per second with a bucket of 5: one unit every 100 ms, 5 at once.
const tenPerSecondBurst5 = rule({ limit: 10, windowMs: 1000, burst: 5 });

describe('gcra: compiled rule', () => {
  it('has T = window / limit and tau = T * burst, in µs', () => {
    expect(tenPerSecondBurst5.intervalUs).toBe(100_000);
    expect(tenPerSecondBurst5.tauUs).toBe(500_000);
    expect(tenPerSecondBurst5.burst).toBe(5);
  });

  it('rounds T up, so rounding only ever makes the limit stricter', () => {
    const r = rule({ limit: 3, windowMs: 1 });
    expect(r.intervalUs).toBe(334);
    expect(r.intervalUs * r.limit).toBeGreaterThanOrEqual(r.windowUs);
  });

  it('token-bucket is an alias of gcra (same state namespace)', () => {
    const r = rule({ limit: 10, windowMs: 1000, algorithm: 'token-bucket' });
    expect(r.algorithm).toBe('gcra');
    expect(r.id).toBe('gcra:10-per-1000ms');
  });

  it('burst defaults to limit', () => {
    expect(rule({ limit: 7, windowMs: 1000 }).burst).toBe(7);
  });
});

describe('gcra: burst, then sustained refill', () => {
  it('admits exactly `burst` at once, each with the right remaining and resetMs', () => {
    const g = runner(gcra, tenPerSecondBurst5);
    for (let i = 1; i <= 5; i++) {
      const o = g.at(T0_US);
      expect(o).toMatchObject({ allowed: true, limit: 5, remaining: 5 - i, retryAfterMs: 0, windowMs: 1000 });
      // The bucket is full again once every taken unit has been refilled.
      expect(o.resetMs).toBe(100 * i);
    }
    const refused = g.at(T0_US);
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 100, resetMs: 500 });
  });

  it('the next unit becomes possible exactly T after the burst, not 1 µs sooner', () => {
    const g = runner(gcra, tenPerSecondBurst5);
    for (let i = 0; i < 5; i++) g.at(T0_US);
    const justBefore = g.at(T0_US + 100_000 - 1);
    expect(justBefore.allowed).toBe(false);
    expect(justBefore.retryAfterMs).toBe(0.001);
    const atBoundary = g.at(T0_US + 100_000);
    expect(atBoundary).toMatchObject({ allowed: true, remaining: 0, resetMs: 500 });
  });

  it('sustains exactly one unit per T after the burst', () => {
    const g = runner(gcra, tenPerSecondBurst5);
    for (let i = 0; i < 5; i++) g.at(T0_US);
    for (let k = 1; k <= 50; k++) {
      const t = T0_US + k * 100_000;
      expect(g.at(t - 1).allowed).toBe(false);
      expect(g.at(t).allowed).toBe(true);
      expect(g.at(t).allowed).toBe(false);
    }
  });

  it('refills to the full bucket after burst * T of idleness, and no further', () => {
    const g = runner(gcra, tenPerSecondBurst5);
    for (let i = 0; i < 5; i++) g.at(T0_US);
    const later = T0_US + 500_000 + 10_000_000; // long idle: still only `burst` at once
    for (let i = 0; i < 5; i++) expect(g.at(later).allowed).toBe(true);
    expect(g.at(later).allowed).toBe(false);
  });

  it('a refused request does not move the TAT: hammering never extends the wait', () => {
    const g = runner(gcra, tenPerSecondBurst5);
    for (let i = 0; i < 5; i++) g.at(T0_US);
    const tat = g.state;
    for (let t = 0; t < 100_000; t += 997) {
      const o = g.at(T0_US + t);
      expect(o.allowed).toBe(false);
      expect(o.retryAfterMs).toBe((100_000 - t) / 1000);
    }
    expect(g.state).toBe(tat);
    expect(g.at(T0_US + 100_000).allowed).toBe(true);
  });
});

describe('gcra: cost (weight)', () => {
  it('refuses a cost larger than what remains, consumes nothing, and says when it fits', () => {
    const g = runner(gcra, tenPerSecondBurst5);
    g.at(T0_US, 3); // 2 remain
    const tat = g.state;
    const o = g.at(T0_US, 3);
    expect(o).toMatchObject({ allowed: false, remaining: 2, retryAfterMs: 100 });
    expect(g.state).toBe(tat);
    expect(g.at(T0_US + 100_000 - 1, 3).allowed).toBe(false);
    expect(g.at(T0_US + 100_000, 3)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('a cost equal to burst passes a full bucket; a cost above burst can never pass', () => {
    const g = runner(gcra, tenPerSecondBurst5);
    expect(g.at(T0_US, 6)).toMatchObject({ allowed: false, retryAfterMs: Infinity, remaining: 5 });
    expect(g.state).toBeUndefined();
    expect(g.at(T0_US, 5)).toMatchObject({ allowed: true, remaining: 0, resetMs: 500 });
  });

  it('cost 0 is admitted, reports the state, and returns the state unchanged', () => {
    const g = runner(gcra, tenPerSecondBurst5);
    expect(g.at(T0_US, 0)).toMatchObject({ allowed: true, remaining: 5, resetMs: 0 });
    expect(g.state).toBeUndefined();
    g.at(T0_US, 2);
    const tat = g.state;
    expect(g.at(T0_US + 50_000, 0)).toMatchObject({ allowed: true, remaining: 3, resetMs: 150 });
    expect(g.state).toBe(tat);
  });
});

describe('gcra: extreme windows and clocks', () => {
  it('a 10-year window: the second unit waits exactly 10 years', () => {
    const r = rule({ limit: 1, windowMs: MAX_WINDOW_MS });
    const g = runner(gcra, r);
    expect(g.at(T0_US).allowed).toBe(true);
    const o = g.at(T0_US + 1);
    expect(o.retryAfterMs).toBe(MAX_WINDOW_MS - 0.001);
    expect(g.at(T0_US + us(MAX_WINDOW_MS) - 1).allowed).toBe(false);
    expect(g.at(T0_US + us(MAX_WINDOW_MS)).allowed).toBe(true);
  });

  it('a 1 ms window with limit 1: one unit per 1000 µs', () => {
    const g = runner(gcra, rule({ limit: 1, windowMs: 1 }));
    expect(g.at(T0_US).allowed).toBe(true);
    expect(g.at(T0_US + 999)).toMatchObject({ allowed: false, retryAfterMs: 0.001 });
    expect(g.at(T0_US + 1000).allowed).toBe(true);
  });

  it('works from a clock with a fractional millisecond value', async () => {
    const clock = microClock(T0_US + 375); // x.375 ms
    const limiter = createLimiter({ limit: 1, windowMs: 100, clock });
    expect((await limiter.consume('k')).allowed).toBe(true);
    clock.advance(99.999);
    expect(await limiter.consume('k')).toMatchObject({ allowed: false, retryAfterMs: 0.001 });
    clock.advance(0.001);
    expect((await limiter.consume('k')).allowed).toBe(true);
  });

  it('a clock that steps backwards admits nothing extra and does not crash', () => {
    const g = runner(gcra, tenPerSecondBurst5);
    for (let i = 0; i < 5; i++) expect(g.at(T0_US + 1_000_000).allowed).toBe(true);
    // One second back: the bucket is still empty, and the wait is counted from the earlier time.
    const o = g.at(T0_US);
    expect(o.allowed).toBe(false);
    expect(o.retryAfterMs).toBe(1100);
    expect(o.remaining).toBe(0);
    expect(o.resetMs).toBe(1500);
    expect(g.at(T0_US + 1_000_000).allowed).toBe(false);
    expect(g.at(T0_US + 1_100_000).allowed).toBe(true);
  });
});
