/**
 * Learning a server's rate from bare 429s (no quota headers): an adaptive send rate per lane, and
 * the pause after a 429 that says nothing about how long to wait.
 *
 * The rate starts in slow start (x1.5 on every paced success, like TCP's) until the first refusal,
 * which brackets the server's rate between the last accepted rate and the refused one. From there
 * every refusal costs a 429 that the caller's budget of refusals (5 % of requests) cannot afford
 * often, so the rate moves only once per probe cycle of `PROBE_EVERY` paced successes: half-way to
 * the refused rate (the ceiling) while below 97 % of it, else a probe 3 % past it. A refusal cuts
 * to 85 % of the refused rate; a second refusal within 10 % of the ceiling confirms it (`settled`):
 * the rate then approaches 97 % of it and never probes past it again.
 *
 * Against a window counter (10 per second, any spacing) spacing is no evidence: every request is
 * accepted until the window is spent. So the rate is also held to twice what was really sent in the
 * last second, and a refusal brackets it by that measured rate too; and a run of accepted requests
 * that ended in a refusal gives the window's rate directly (`windowRate`). Pure functions of
 * (state, event).
 */

/** The adaptive send rate of one lane, in requests per second. */
export interface AdaptiveRate {
  readonly rate: number;
  /** The lowest rate refused since the last increase past it; undefined before any refusal. */
  readonly ceiling: number | undefined;
  /** Slow start: growing x1.5 per success until the first refusal. */
  readonly slow: boolean;
  /** Paced successes since the rate last changed (a probe cycle). */
  readonly since?: number;
  /** A refusal confirmed the ceiling: no more probes past it. */
  readonly settled?: boolean;
  /**
   * Learned from a window counter's run (`windowRate`): a budget per period, not an edge. It rises
   * by 8 % per probe cycle until a probe is refused, then never again.
   */
  readonly windowed?: boolean;
}

/** First rate of slow start, per second: a server that refuses 5/s is rare, and the growth is fast. */
export const SLOW_START_RATE = 5;
/** Paced successes per probe cycle: a refused probe costs one 429 per at least this many sends. */
export const PROBE_EVERY = 25;
/**
 * Paced successes per climb: a step half-way to 97 % of a refused rate. A climb stays below a rate
 * the server refused, so it expects no refusal and may come sooner than a probe past the ceiling:
 * 25 sends per step left the rate below the server's for most of an 80-call run. (A windowed
 * rate's probes keep full cycles: a few sends can fit in one window and prove nothing.)
 */
export const CLIMB_EVERY = 8;
/**
 * Paced successes per gentle probe of a windowed rate: about a window's worth at the rates the
 * matrix meets (10 per second). A probe refused later than that costs its one 429 all the same
 * (then the rate is settled), and 25 sends per 8 % left the rate a third below the server's.
 */
export const WINDOW_PROBE_EVERY = 12;
/** Slowest rate the client falls to: one request per hour. */
const MIN_RATE = 1 / 3600;
const GROWTH = 1.5;
const DECREASE = 0.85;
/** Below this share of the ceiling a cycle climbs half-way to it; above, it probes past it. */
const NEAR = 0.97;
/** A probe past the ceiling (which may have been jitter or old news). */
const PROBE_SHARE = 0.03;
/** A gentle probe raises a windowed rate by this share. */
const WINDOW_PROBE = 0.08;

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
  const since = (s.since ?? 0) + 1;
  const c = s.ceiling ?? s.rate;
  const every = s.windowed === true ? (s.settled === true ? PROBE_EVERY : WINDOW_PROBE_EVERY) : s.rate < NEAR * c ? CLIMB_EVERY : PROBE_EVERY;
  if (since < every) return { ...s, since };
  if (s.windowed === true) return s.settled === true ? { ...s, since: 0 } : { ...s, rate: s.rate * (1 + WINDOW_PROBE), since: 0 };
  if (s.rate < NEAR * c) return { ...s, rate: Math.min(cap, s.rate + (NEAR * c - s.rate) / 2 + 0.01 * c), since: 0 };
  if (s.settled === true) return { ...s, since: 0 };
  const rate = Math.min(cap, s.rate * (1 + PROBE_SHARE));
  return { ...s, rate, ceiling: Math.max(c, rate), since: 0 };
}

/** A strict spacer's run: the closest two accepted requests were sent, and the refused one to the last accepted. */
export interface Spacing {
  readonly acceptedMs: number;
  readonly refusedMs: number;
}

/**
 * A request sent at the current rate was refused (bare 429). The refused rate is the lower of the
 * target rate and what was really sent in the last second (`sentPerSecond`, this one included).
 */
export function refused(s: AdaptiveRate, paced: boolean, sentPerSecond = Infinity, spacing?: Spacing): AdaptiveRate {
  // An unpaced refusal (the first request after a pause) means the pause was short, not the rate.
  if (!paced) return s;
  // In slow start the last second saw the ramp, not the server's rate: the rate refused is the
  // bracket's top, at most 1.5x what was really sent (a window counter accepts any spacing).
  // A strict spacer's refusal after slow start is a request that came too close: its spacing is
  // the rate refused (what was sent over the last second includes the pauses before it).
  const spaced = spacing !== undefined && !s.slow && s.windowed !== true;
  const at = spaced ? Math.min(s.rate, 1000 / spacing.refusedMs) : Math.min(s.rate, Math.max(1, s.slow ? GROWTH * sentPerSecond : sentPerSecond));
  // Slow start grew past the server: the previous rate was accepted, and (a strict spacer) no
  // closer spacing than the run's accepted ones.
  if (s.slow) {
    const rate = Math.min(at / GROWTH, spacing === undefined ? Infinity : 1000 / spacing.acceptedMs);
    return { rate: Math.max(MIN_RATE, rate), ceiling: at, slow: false };
  }
  // Refused again near the ceiling: that is the server's rate.
  const settled = s.settled === true || (s.ceiling !== undefined && Math.abs(at - s.ceiling) <= 0.1 * s.ceiling);
  return { rate: Math.max(MIN_RATE, at * DECREASE), ceiling: at, slow: false, ...(settled ? { settled } : {}) };
}

/**
 * A window counter's run: `accepted` requests went through from the run's first send until a
 * refusal, and the budget was back (a request accepted again) `periodMs` after that first send.
 * Whatever the server counts in (a fixed window opened by the run's first request, a sliding log,
 * a strict spacer), `accepted` per `periodMs` is a rate it accepted, so the lane paces evenly at it
 * (with a 2 % margin). `previous`: the windowed rate whose probe was refused (the new one is not
 * above the last confirmed rate, and probing stops: the rate is settled).
 */
export function windowRate(accepted: number, periodMs: number, previous?: AdaptiveRate): AdaptiveRate {
  let rate = Math.max(MIN_RATE, (1000 * accepted) / (periodMs * 1.02 + 10));
  const again = previous?.windowed === true;
  // A refused probe: back to the rate before it, which a whole probe cycle confirmed (this run's
  // period includes the pause, so its own figure is lower than what the server accepts). A refusal
  // of a settled rate (the server slowed down) takes the lower of the two.
  if (again) rate = previous.settled === true ? Math.min(rate, previous.rate / (1 + WINDOW_PROBE)) : previous.rate / (1 + WINDOW_PROBE);
  return { rate, ceiling: undefined, slow: false, windowed: true, since: 0, ...(again ? { settled: true } : {}) };
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
