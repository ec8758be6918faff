/**
 * MemoryStore.charge and Limiter.charge: the cost of an admitted request charged afterwards,
 * unconditionally. The budget may go below zero; requests are then refused, with `remaining` 0 and
 * the exact wait, until the overdraft is paid back.
 */
import { describe, expect, it } from 'vitest';
import { compileRules } from '../../src/core/rule.js';
import { createLimiter, MemoryStore } from '../../src/index.js';
import { microClock, us } from '../core/harness.js';

const ALGORITHMS = ['gcra', 'fixed-window', 'sliding-window', 'sliding-log', 'quota'] as const;

describe('Limiter.charge on the memory store', () => {
  it('gcra: a charge past the limit is an overdraft; requests wait exactly until it is paid back', async () => {
    const clock = microClock();
    // 10 per second: one unit every 100 ms, 10 at once.
    const limiter = createLimiter({ limit: 10, windowMs: 1000, clock });
    expect((await limiter.consume('k')).remaining).toBe(9);
    // The response says the request cost 25 in all: 24 more, 15 past the limit.
    const c = await limiter.charge('k', 24);
    expect(c).toMatchObject({ allowed: true, remaining: 0, retryAfterMs: 0, cost: 24, resetMs: 2500 });
    const refused = await limiter.consume('k');
    // 15 units of overdraft + 1 to fit: 1.6 s.
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 1600 });
    clock.advanceUs(us(1600) - 1);
    expect((await limiter.consume('k')).allowed).toBe(false);
    clock.advanceUs(1);
    expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('fixed-window: the overdraft lasts until the window ends, then the next window starts full', async () => {
    const clock = microClock();
    const limiter = createLimiter({ algorithm: 'fixed-window', limit: 5, windowMs: 1000, clock });
    await limiter.consume('k');
    clock.advance(200);
    expect(await limiter.charge('k', 20)).toMatchObject({ allowed: true, remaining: 0, resetMs: 800 });
    expect(await limiter.consume('k')).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 800, resetMs: 800 });
    expect(await limiter.peek('k', 0)).toMatchObject({ allowed: false, remaining: 0 });
    clock.advance(800);
    expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 4 });
  });

  it('a charge that stays within the limit reports what remains', async () => {
    for (const algorithm of ALGORITHMS) {
      const limiter = createLimiter({ algorithm, limit: 10, windowMs: 1000, clock: microClock() });
      await limiter.consume('k');
      const c = await limiter.charge('k', 3);
      expect(c, algorithm).toMatchObject({ allowed: true, remaining: 6, retryAfterMs: 0 });
      expect((await limiter.consume('k')).remaining, algorithm).toBe(5);
    }
  });

  it('every algorithm: overdrawn, nothing is admitted and remaining is 0; cost 0 charges nothing', async () => {
    for (const algorithm of ALGORITHMS) {
      const clock = microClock();
      const limiter = createLimiter({ algorithm, limit: 4, windowMs: 1000, clock });
      expect((await limiter.charge('k', 0)).remaining, algorithm).toBe(4);
      expect((await limiter.consume('k')).allowed, algorithm).toBe(true);
      expect(await limiter.charge('k', 10), algorithm).toMatchObject({ allowed: true, remaining: 0, retryAfterMs: 0 });
      const d = await limiter.consume('k');
      expect(d, algorithm).toMatchObject({ allowed: false, remaining: 0 });
      expect(d.retryAfterMs, algorithm).toBeGreaterThan(0);
      expect(Number.isFinite(d.retryAfterMs), algorithm).toBe(true);
      expect(await limiter.charge('k', 0), algorithm).toMatchObject({ allowed: true, remaining: 0 });
    }
  });

  it('several rules: every rule is charged, the decision names the tightest', async () => {
    const clock = microClock();
    const limiter = createLimiter({
      clock,
      limits: [
        { name: 'per-second', limit: 10, windowMs: 1000 },
        { name: 'per-minute', algorithm: 'sliding-log', limit: 30, windowMs: 60_000 },
      ],
    });
    await limiter.consume('k');
    const c = await limiter.charge('k', 14);
    expect(c.policy).toBe('per-second');
    expect(c.policies.map((p) => [p.policy, p.allowed, p.remaining])).toEqual([
      ['per-second', true, 0],
      ['per-minute', true, 15],
    ]);
    const refused = await limiter.consume('k');
    expect(refused).toMatchObject({ allowed: false, policy: 'per-second', retryAfterMs: 600 });
    // The refusal took nothing from per-minute.
    expect(refused.policies[1]).toMatchObject({ policy: 'per-minute', allowed: true, remaining: 15 });
  });

  it('bad costs are refused with the same RangeError as consume, nothing is charged', async () => {
    const limiter = createLimiter({ limit: 5, windowMs: 1000, clock: microClock() });
    for (const cost of [-1, 1.5, Number.NaN, Infinity, '3' as unknown as number]) {
      await expect(limiter.charge('k', cost)).rejects.toThrow(/cost must be an integer >= 0/);
      await expect(limiter.consume('k', cost)).rejects.toThrow(/cost must be an integer >= 0/);
    }
    const store = new MemoryStore();
    const rules = compileRules([{ limit: 5, windowMs: 1000 }]);
    expect(() => store.chargeSync('k', rules, -2)).toThrow(RangeError);
    await expect(store.charge('k', rules, 0.5)).rejects.toBeInstanceOf(RangeError);
    expect((await limiter.peek('k', 0)).remaining).toBe(5);
  });

  it('sliding-log: a huge charge keeps the log at limit + 1 entries and decides as if all were kept', async () => {
    const clock = microClock();
    const store = new MemoryStore({ clock });
    const limiter = createLimiter({ algorithm: 'sliding-log', limit: 3, windowMs: 1000, store });
    await limiter.consume('k');
    clock.advance(100);
    await limiter.charge('k', 1_000_000_000);
    expect(await limiter.consume('k')).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 1000 });
    clock.advance(999);
    expect((await limiter.consume('k')).allowed).toBe(false);
    clock.advance(1);
    expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 2 });
  });
});
