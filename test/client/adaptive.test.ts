/** The adaptive rate (AIMD) and the backoff, as pure functions. */
import { describe, expect, it } from 'vitest';
import { accepted, backoffPauseMs, belowBudget, intervalMs, refused, slowStart, type AdaptiveRate } from '../../src/client/adaptive.js';

describe('adaptive rate', () => {
  it('slow start grows x1.5 per paced success; unpaced answers change nothing', () => {
    const s = slowStart(4);
    expect(accepted(s, true).rate).toBe(6);
    expect(accepted(s, false)).toBe(s);
    expect(refused(s, false)).toBe(s);
  });
  it('the first refusal brackets the rate: back to the last accepted one, the refused one as ceiling', () => {
    const r = refused({ rate: 12, ceiling: undefined, slow: true }, true);
    expect(r).toEqual({ rate: 8, ceiling: 12, slow: false });
  });
  it('climbs fast to 85 % of the ceiling, slowly to it, then probes past it', () => {
    let s: AdaptiveRate = { rate: 5, ceiling: 10, slow: false };
    s = accepted(s, true);
    expect(s.rate).toBeCloseTo(5.5);
    s = { rate: 8.45, ceiling: 10, slow: false };
    expect(accepted(s, true).rate).toBeCloseTo(8.5); // capped at 85 %
    expect(accepted({ rate: 9, ceiling: 10, slow: false }, true).rate).toBeCloseTo(9.05);
    expect(accepted({ rate: 10, ceiling: 10, slow: false }, true).rate).toBeCloseTo(10.3);
  });
  it('a refusal cuts to 85 % of the refused rate', () => {
    expect(refused({ rate: 10, ceiling: 12, slow: false }, true)).toEqual({ rate: 8.5, ceiling: 10, slow: false });
  });
  it('against a window counter the rate is held to what was really sent', () => {
    // 300/s targeted, 10 really sent in the last second: the refused rate is 10, not 300.
    expect(refused({ rate: 300, ceiling: 400, slow: false }, true, 10)).toEqual({ rate: 8.5, ceiling: 10, slow: false });
    expect(accepted({ rate: 100, ceiling: undefined, slow: true }, true, 10).rate).toBe(20);
  });
  it('a budget a strict server refuses under: 85 % of it', () => {
    expect(belowBudget(10)).toEqual({ rate: 8.5, ceiling: 10, slow: false });
    expect(intervalMs({ rate: 8, ceiling: 10, slow: false }, 2)).toBe(250);
  });
});

describe('backoff without a wait', () => {
  it('doubles from the base, capped, jittered to 50-100 %', () => {
    expect(backoffPauseMs(0, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffPauseMs(0, 1000, 60_000, () => 1)).toBe(1000);
    expect(backoffPauseMs(3, 1000, 60_000, () => 1)).toBe(8000);
    expect(backoffPauseMs(10, 1000, 60_000, () => 1)).toBe(60_000);
  });
});
