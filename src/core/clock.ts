/** A source of wall-clock time in epoch milliseconds (may be fractional). Injectable for tests. */
export type Clock = () => number;

/** The default clock. */
export const systemClock: Clock = Date.now;

/**
 * Algorithms work in integer microseconds so that every comparison is exact in a double
 * (epoch µs today is ~1.8e15, well below 2^53 ≈ 9e15).
 */
export function toMicros(ms: number): number {
  // Rounded, not floored: `now + retryAfterMs` computed by a caller in epoch ms must not land a
  // microsecond before the time the store computed (ms * 1000 is often x.9999… in a double).
  return Math.round(ms * 1000);
}

/** A manually driven clock for tests and simulations. */
export interface ManualClock {
  (): number;
  /** Move time forward (or backward, to test clock steps) by `ms`. */
  advance(ms: number): void;
  /** Jump to an absolute epoch-ms time. */
  set(ms: number): void;
}

/** Create a {@link ManualClock} starting at `startMs` (default: a fixed date, for reproducibility). */
export function manualClock(startMs = Date.UTC(2026, 0, 1)): ManualClock {
  let now = startMs;
  const clock = (() => now) as ManualClock;
  clock.advance = (ms: number) => {
    now += ms;
  };
  clock.set = (ms: number) => {
    now = ms;
  };
  return clock;
}
