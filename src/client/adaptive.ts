/**
 * Learning a server's rate from bare 429s (no quota headers): an AIMD send rate per lane, and the
 * pause after a 429 that says nothing about how long to wait.
 *
 * The rate starts in slow start (x1.5 on every paced success, like TCP's) until the first refusal,
 * which brackets the server's rate between the last accepted rate and the refused one. From there
 * it climbs fast (5 % of the refused rate per success) to 85 % of it, then slowly (0.3 %), and a
 * refusal cuts it to 85 % of the rate refused: one refusal per ~50 requests at about 92 % of the
 * server's rate against a strict leaky bucket (nginx `limit_req`). Pure functions of (state, event).
 */

/** The adaptive send rate of one lane, in requests per second. */
export interface AdaptiveRate {
  readonly rate: number;
  /** The lowest rate refused since the last increase past it; undefined before any refusal. */
  readonly ceiling: number | undefined;
  /** Slow start: doubling until the first refusal. */
  readonly slow: boolean;
}

/** First rate of slow start, per second: a server that refuses 5/s is rare, and the doubling is fast. */
export const SLOW_START_RATE = 5;
/** Slowest rate the client falls to: one request per hour. */
const MIN_RATE = 1 / 3600;
const GROWTH = 1.5;
const DECREASE = 0.85;
const FAST_SHARE = 0.05;
const SLOW_SHARE = 0.003;

/** A lane that has seen no quota header starts here. */
export function slowStart(rate = SLOW_START_RATE): AdaptiveRate {
  return { rate, ceiling: undefined, slow: true };
}

/** The rate just below a known budget (`limitPerSecond`) that a strict server still refused. */
export function belowBudget(limitPerSecond: number): AdaptiveRate {
  return { rate: Math.max(MIN_RATE, limitPerSecond * DECREASE), ceiling: limitPerSecond, slow: false };
}

/** A request sent at the current rate (paced) was accepted. Unpaced successes prove nothing. */
export function accepted(s: AdaptiveRate, paced: boolean): AdaptiveRate {
  if (!paced) return s;
  if (s.slow) return { ...s, rate: s.rate * GROWTH };
  const c = s.ceiling ?? s.rate;
  const rate = s.rate < DECREASE * c ? Math.min(DECREASE * c, s.rate + FAST_SHARE * c) : s.rate + SLOW_SHARE * c;
  return { ...s, rate, ceiling: rate > c ? rate : c };
}

/** A request sent at the current rate was refused (bare 429). */
export function refused(s: AdaptiveRate, paced: boolean): AdaptiveRate {
  // An unpaced refusal (the first request after a pause) means the pause was short, not the rate.
  if (!paced) return s;
  // Slow start grew past the server: the previous rate was accepted.
  if (s.slow) return { rate: Math.max(MIN_RATE, s.rate / GROWTH), ceiling: s.rate, slow: false };
  return { rate: Math.max(MIN_RATE, s.rate * DECREASE), ceiling: s.rate, slow: false };
}

/** Ms between sends at this rate, for a request of `cost` units. */
export function intervalMs(s: AdaptiveRate, cost = 1): number {
  return (1000 * cost) / s.rate;
}

/**
 * Pause after the `n`-th (0-based) consecutive 429 that carries no wait: `base * 2^n`, capped, with
 * jitter in [half, full] so processes that were refused together do not come back together.
 */
export function backoffPauseMs(n: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const full = Math.min(capMs, baseMs * 2 ** Math.min(n, 30));
  return Math.ceil(full / 2 + (random() * full) / 2);
}
