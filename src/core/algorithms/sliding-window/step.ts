import { ruleOutcome } from '../../decision.js';
import type { Rule } from '../../rule.js';
import { liftLimit, ms, type Step } from '../step.js';

/** Weighted two-window counter state: current window start (µs) and both windows' counts. */
export interface SlidingWindowState {
  readonly start: number;
  readonly prev: number;
  readonly curr: number;
}

/**
 * Sliding window counter (weighted two windows). The estimate is
 * `prev * (W - elapsed) / W + curr`; a request is admitted iff estimate + cost <= limit.
 * Never more than `limit` per aligned window; the estimate assumes the previous window's
 * requests were spread evenly, which is what makes it approximate across a boundary.
 */
export function slidingWindow(
  state: SlidingWindowState | undefined,
  now: number,
  rule: Rule,
  cost: number,
): Step<SlidingWindowState | undefined> {
  const W = rule.windowUs;
  const limit = rule.limit;
  const aligned = Math.floor(now / W) * W;
  // A clock that stepped back before the stored window keeps using the stored window (as if no
  // time had passed in it): starting the earlier window afresh would admit its units twice.
  const start = state !== undefined && state.start > aligned ? state.start : aligned;
  let prev = 0;
  let curr = 0;
  if (state !== undefined) {
    if (state.start === start) {
      prev = state.prev;
      curr = state.curr;
    } else if (state.start === start - W) {
      prev = state.curr;
    }
  }
  const elapsed = now > start ? now - start : 0;
  const estimate = (prev * (W - elapsed)) / W + curr;
  if (estimate + cost <= limit) {
    const after = curr + cost;
    return {
      next: cost === 0 ? state : { start, prev, curr: after },
      outcome: ruleOutcome(
        rule.name,
        true,
        limit,
        /* remaining */ Math.max(0, Math.floor(limit - estimate - cost)),
        /* resetMs */ ms(after > 0 ? start + 2 * W - now : prev > 0 ? start + W - now : 0),
        /* retryAfterMs */ 0,
        rule.windowMs,
      ),
    };
  }
  let retryUs: number;
  if (cost > limit) {
    retryUs = Infinity;
  } else if (curr + cost > limit) {
    // Must wait for the next window, where `curr` becomes the weighted previous count.
    retryUs = start + W + firstFit(curr, 0, cost, W, limit, Math.ceil(W * (1 - (limit - cost) / curr))) - now;
  } else {
    // Within this window, once enough of `prev` has slid out.
    retryUs = Math.max(1, start + firstFit(prev, curr, cost, W, limit, Math.ceil(W * (1 - (limit - curr - cost) / prev))) - now);
  }
  return {
    next: state,
    outcome: ruleOutcome(
      rule.name,
      false,
      limit,
      /* remaining */ Math.max(0, Math.floor(limit - estimate)),
      /* resetMs */ ms(curr > 0 ? start + 2 * W - now : start + W - now),
      /* retryAfterMs */ retryUs === Infinity ? Infinity : ms(retryUs),
      rule.windowMs,
    ),
  };
}

/**
 * The first elapsed time e in [0, W] (µs) at which `cost` fits: the admission test above, evaluated
 * with the same floating-point operations in the same order. `guess` is the closed-form answer,
 * which rounding can put 1 µs off either way; stepping from it makes retry-after exact (a request
 * at now + retryAfter passes, 1 µs sooner it does not). It fits at e = W (nothing of `prev` left)
 * whenever the caller asks, so the walk ends.
 */
function firstFit(prev: number, curr: number, cost: number, W: number, limit: number, guess: number): number {
  const fits = (e: number) => (prev * (W - e)) / W + curr + cost <= limit;
  let e = guess < 0 ? 0 : guess > W ? W : guess;
  while (e > 0 && fits(e - 1)) e--;
  while (e < W && !fits(e)) e++;
  return e;
}

/**
 * The state after forcing `cost` (>= 1) units in (a charge, see AlgorithmDefinition.charge): the
 * step with the limit lifted, so the units are counted where an admission would count them.
 */
export function slidingWindowCharge(state: SlidingWindowState | undefined, now: number, rule: Rule, cost: number): SlidingWindowState {
  return slidingWindow(state, now, liftLimit(rule), cost).next as SlidingWindowState;
}
