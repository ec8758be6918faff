/** The adaptive rate (AIMD) and the backoff, as pure functions. */
import { describe, expect, it } from 'vitest';
import { accepted, backoffPauseMs, belowBudget, CLIMB_EVERY, intervalMs, PROBE_EVERY, refused, slowStart, WINDOW_PROBE_EVERY, windowRate, type AdaptiveRate } from '../../src/client/adaptive.js';

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
  it('climbs half-way to 97 % of the ceiling once per CLIMB_EVERY paced successes, then probes 3 % past it once per PROBE_EVERY', () => {
    let s: AdaptiveRate = { rate: 5, ceiling: 10, slow: false };
    for (let i = 1; i < CLIMB_EVERY; i++) s = accepted(s, true);
    expect(s.rate).toBe(5); // a whole climb at the rate before it moves
    s = accepted(s, true);
    expect(s.rate).toBeCloseTo(5 + (9.7 - 5) / 2 + 0.1);
    expect(s.since).toBe(0);
    // Past the ceiling a refusal is likely: a whole probe cycle first, at most one refusal per cycle.
    let near: AdaptiveRate = { rate: 9.8, ceiling: 10, slow: false };
    for (let i = 1; i < PROBE_EVERY; i++) near = accepted(near, true);
    expect(near.rate).toBe(9.8);
    expect(accepted(near, true).rate).toBeCloseTo(9.8 * 1.03);
    expect(accepted(near, false)).toBe(near);
  });
  it("a strict spacer's refusal is bracketed by spacing: slow start falls to the closest accepted spacing at most, later the refused spacing is the refused rate", () => {
    // Slow start refused at 15/s after 1.5x growth from 10/s, accepted requests no closer than 105 ms.
    const first = refused({ rate: 15, ceiling: undefined, slow: true }, true, Infinity, { acceptedMs: 105, refusedMs: 70 });
    expect(first.rate).toBeCloseTo(1000 / 105);
    expect(first.ceiling).toBe(15);
    // Paced at 9.5/s after a pause: the last second sent 3, but the refused request came 98 ms after
    // the last accepted one, so 10.2/s was refused, not 3/s.
    const later = refused({ rate: 9.5, ceiling: 10, slow: false }, true, 3, { acceptedMs: 104, refusedMs: 98 });
    expect(later.ceiling).toBe(9.5);
    expect(later.rate).toBeCloseTo(9.5 * 0.85);
    expect(refused({ rate: 12, ceiling: 14, slow: false }, true, 3, { acceptedMs: 104, refusedMs: 98 }).ceiling).toBeCloseTo(1000 / 98);
  });
  it('a second refusal near the ceiling settles it: the rate approaches 97 % of it and never probes past it', () => {
    const r = refused({ rate: 10.3, ceiling: 10, slow: false, since: 3 }, true);
    expect(r).toEqual({ rate: 10.3 * 0.85, ceiling: 10.3, slow: false, settled: true });
    let s: AdaptiveRate = r;
    for (let i = 0; i < 20 * PROBE_EVERY; i++) s = accepted(s, true);
    expect(s.rate).toBeLessThanOrEqual(10.3);
    expect(s.rate).toBeGreaterThan(0.96 * 10.3);
    // A refusal far from the ceiling (the server slowed down) does not settle it.
    expect(refused({ rate: 6, ceiling: 10, slow: false }, true).settled).toBeUndefined();
  });
  it("a window counter's run gives its rate: accepted requests per period (2 % margin), a gentle probe per cycle, settled after a refused probe", () => {
    const w = windowRate(10, 1000);
    expect(w.rate).toBeCloseTo(10_000 / 1030);
    expect(w.windowed).toBe(true);
    let s = w;
    for (let i = 1; i < WINDOW_PROBE_EVERY; i++) s = accepted(s, true);
    expect(s.rate).toBe(w.rate); // a whole probe cycle at the rate before it moves
    s = accepted(s, true);
    expect(s.rate).toBeCloseTo(w.rate * 1.08);
    // The probe was refused: back to the last confirmed rate at most, and no more probes.
    const again = windowRate(12, 1000, s);
    expect(again.rate).toBeCloseTo(w.rate);
    expect(again.settled).toBe(true);
    // Also when the refused run's own figure is lower (its period includes the pause).
    expect(windowRate(12, 3000, s).rate).toBeCloseTo(w.rate);
    // A settled rate refused again (the server slowed down) takes the run's lower figure.
    expect(windowRate(12, 3000, again).rate).toBeCloseTo(12_000 / (3000 * 1.02 + 10));
    let t = again;
    for (let i = 0; i < 5 * PROBE_EVERY; i++) t = accepted(t, true);
    expect(t.rate).toBe(again.rate);
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
