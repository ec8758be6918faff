/**
 * The block algorithm (the penalty box behind `blockDurationMinutes` / `blockEscalation`): a pure
 * step of (state, now). Consuming starts a block; while it lasts every decision is refused with
 * the time left and nothing is written; a block starting within the reset period after the last
 * one ended lasts `multiplier` times as long, up to the cap; past the reset period it is the
 * first length again.
 */
import { describe, expect, it } from 'vitest';
import { block, blockAlgorithm, blockRule, type BlockState } from '../../../src/core/algorithms/block/index.js';
import { T0_US } from '../harness.js';

const S = 1_000_000; // 1 s in µs
const rule = blockRule({ name: 'p:block', blockMs: 60_000, multiplier: 2, maxBlockMs: 180_000, resetMs: 600_000 });

/** Start blocks one after the other, each `gapUs` after the previous one ended; their lengths in µs. */
function lengths(n: number, gapUs: number, r = rule): number[] {
  let state: BlockState | undefined;
  let now = T0_US;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = block(state, now, r, 1);
    expect(s.outcome.allowed).toBe(true);
    state = s.next as BlockState;
    expect(s.outcome.resetMs * 1000).toBe(state.lengthUs);
    out.push(state.lengthUs);
    now = state.until + gapUs;
  }
  return out;
}

describe('block step', () => {
  it('a fresh key is not blocked; consuming blocks it for the first length, reported as resetMs', () => {
    const peek = block(undefined, T0_US, rule, 0);
    expect(peek.outcome).toMatchObject({ allowed: true, remaining: 1, retryAfterMs: 0 });
    expect(peek.next).toBeUndefined();
    const s = block(undefined, T0_US, rule, 1);
    expect(s.outcome).toMatchObject({ policy: 'p:block', allowed: true, limit: 1, remaining: 0, resetMs: 60_000, retryAfterMs: 0, windowMs: 60_000 });
    expect(s.next).toEqual({ until: T0_US + 60 * S, lengthUs: 60 * S });
  });

  it('while blocked every decision is refused with the time left, and the state is unchanged (a block starts once)', () => {
    const state: BlockState = { until: T0_US + 60 * S, lengthUs: 60 * S };
    for (const cost of [0, 1, 3]) {
      const s = block(state, T0_US + 15 * S, rule, cost);
      expect(s.outcome).toMatchObject({ allowed: false, remaining: 0, resetMs: 45_000, retryAfterMs: 45_000 });
      expect(s.next).toBe(state);
    }
  });

  it('a charge (a consumption that cannot be refused) starts a block, or leaves a running one as it is', () => {
    const started = blockAlgorithm.charge(undefined, T0_US, rule, 5);
    expect(started).toEqual({ until: T0_US + 60 * S, lengthUs: 60 * S });
    expect(blockAlgorithm.charge(started, T0_US + 15 * S, rule, 1)).toBe(started);
    // After it ended, within the reset period: the next, longer block.
    expect(blockAlgorithm.charge(started, T0_US + 61 * S, rule, 1)).toEqual({ until: T0_US + 181 * S, lengthUs: 120 * S });
  });

  it('1st, 2nd, 3rd block within the reset period: 60 s, 120 s, then the 180 s cap, and the cap holds', () => {
    expect(lengths(5, 0)).toEqual([60, 120, 180, 180, 180].map((s) => s * S));
    expect(lengths(4, 600 * S - 1)).toEqual([60, 120, 180, 180].map((s) => s * S));
  });

  it('a block starting a whole reset period after the last one ended is the first length again', () => {
    expect(lengths(3, 600 * S)).toEqual([60, 60, 60].map((s) => s * S));
  });

  it('fractional multipliers are floored to the µs; multiplier 1 (no escalation) always gives the first length', () => {
    const r15 = blockRule({ name: 'p:block', blockMs: 1, multiplier: 1.5, maxBlockMs: 60_000, resetMs: 600_000 });
    expect(lengths(4, 0, r15)).toEqual([1000, 1500, 2250, 3375]);
    const r7 = blockRule({ name: 'p:block', blockMs: 0.007, multiplier: 1.5, maxBlockMs: 60_000, resetMs: 600_000 });
    expect(lengths(4, 0, r7)).toEqual([7, 10, 15, 22]);
    const flat = blockRule({ name: 'p:block', blockMs: 60_000, multiplier: 1, maxBlockMs: 60_000, resetMs: 0 });
    expect(lengths(3, 0, flat)).toEqual([60, 60, 60].map((s) => s * S));
  });

  it('after a reload lengthens the first block, an escalated block is never shorter than the new first block', () => {
    // The last block lasted 60 s under the old rule; the new one starts at 1 h (cap 1 day).
    const last: BlockState = { until: T0_US, lengthUs: 60 * S };
    const longer = blockRule({ name: 'p:block', blockMs: 3_600_000, multiplier: 2, maxBlockMs: 86_400_000, resetMs: 86_400_000 });
    const s = block(last, T0_US + S, longer, 1);
    expect(s.next).toEqual({ until: T0_US + S + 3600 * S, lengthUs: 3600 * S });
    expect(s.outcome.resetMs).toBe(3_600_000);
  });
});
