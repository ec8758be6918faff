/**
 * Learning a server's rate from bare 429s (no quota headers): an AIMD send rate per lane, and the
 * pause after a 429 that says nothing about how long to wait.
 *
 * The rate starts in slow start (x1.5 on every paced success, like TCP's) until the first refusal,
 * which brackets the server's rate between the last accepted rate and the refused one. From there
 * it climbs fast (5 % of the refused rate per success) to 85 % of it, then slowly (0.5 %) to it,
 * then by 3 % per success past it; a refusal cuts it to 85 % of the rate refused: about one refusal
 * per 35 requests at about 90 % of the server's rate against a strict leaky bucket (nginx `limit_req`). Against a window counter (10 per
 * second, any spacing) spacing is no evidence: every request is accepted until the window is spent.
 * So the rate is also held to twice what was really sent in the last second, and a refusal brackets
 * it by that measured rate too. Pure functions of (state, event).
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
const SLOW_SHARE = 0.005;
/** Past the refused rate without a refusal, that ceiling was jitter or old news: probe up by 3 %. */
const PROBE_SHARE = 0.03;

/** A lane that has seen no quota header starts here. */
export function slowStart(rate = SLOW_START_RATE): AdaptiveRate {
  return { rate, ceiling: undefined, slow: true };
}

/** The rate just below a known budget (`limitPerSecond`) that a strict server still refused. */
export function belowBudget(limitPerSecond: number): AdaptiveRate {
  return { rate: Math.max(MIN_RATE, limitPerSecond * DECREASE), ceiling: limitPerSecond, slow: false };
}

/**
 * A request sent at the current rate (paced) was accepted. Unpaced successes prove nothing.
 * `sentPerSecond`: the rate really sent over the last second (the rate may not run away from it).
 */
export function accepted(s: AdaptiveRate, paced: boolean, sentPerSecond = Infinity): AdaptiveRate {
  if (!paced) return s;
  const cap = Math.max(SLOW_START_RATE, 2 * sentPerSecond);
  if (s.slow) return { ...s, rate: Math.min(cap, s.rate * GROWTH) };
  const c = s.ceiling ?? s.rate;
  // Past the ceiling the probe accelerates with the distance (like CUBIC's convex part): a ceiling
  // set by a jittered refusal early on must not cost a minute of slow climbing.
  const step = s.rate < DECREASE * c ? FAST_SHARE * c : s.rate < c ? SLOW_SHARE * c : PROBE_SHARE * s.rate + 0.1 * (s.rate - c);
  const rate = Math.min(cap, s.rate < DECREASE * c ? Math.min(DECREASE * c, s.rate + step) : s.rate + step);
  return { ...s, rate, ceiling: rate > c ? rate : c };
}

/**
 * A request sent at the current rate was refused (bare 429). The refused rate is the lower of the
 * target rate and what was really sent in the last second (`sentPerSecond`, this one included).
 */
export function refused(s: AdaptiveRate, paced: boolean, sentPerSecond = Infinity): AdaptiveRate {
  // An unpaced refusal (the first request after a pause) means the pause was short, not the rate.
  if (!paced) return s;
  // In slow start the last second saw the ramp, not the server's rate: the rate refused is the
  // bracket's top, at most 1.5x what was really sent (a window counter accepts any spacing).
  const at = Math.min(s.rate, Math.max(1, s.slow ? GROWTH * sentPerSecond : sentPerSecond));
  // Slow start grew past the server: the previous rate was accepted.
  if (s.slow) return { rate: Math.max(MIN_RATE, at / GROWTH), ceiling: at, slow: false };
  return { rate: Math.max(MIN_RATE, at * DECREASE), ceiling: at, slow: false };
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
