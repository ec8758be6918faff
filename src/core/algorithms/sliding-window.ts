import type { Rule } from '../rule.js';
import { ms, type Step } from './step.js';

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
      outcome: {
        policy: rule.name,
        allowed: true,
        limit,
        remaining: Math.max(0, Math.floor(limit - estimate - cost)),
        resetMs: ms(after > 0 ? start + 2 * W - now : prev > 0 ? start + W - now : 0),
        retryAfterMs: 0,
        windowMs: rule.windowMs,
      },
    };
  }
  let retryUs: number;
  if (cost > limit) {
    retryUs = Infinity;
  } else if (curr + cost > limit) {
    // Must wait for the next window, where `curr` becomes the weighted previous count.
    const e = Math.ceil(W * (1 - (limit - cost) / curr));
    retryUs = start + W + e - now;
  } else {
    // Within this window, once enough of `prev` has slid out.
    const e = Math.ceil(W * (1 - (limit - curr - cost) / prev));
    retryUs = Math.max(1, start + e - now);
  }
  return {
    next: state,
    outcome: {
      policy: rule.name,
      allowed: false,
      limit,
      remaining: Math.max(0, Math.floor(limit - estimate)),
      resetMs: ms(curr > 0 ? start + 2 * W - now : start + W - now),
      retryAfterMs: retryUs === Infinity ? Infinity : ms(retryUs),
      windowMs: rule.windowMs,
    },
  };
}
