import type { Rule } from '../../rule.js';
import { countInWindow, liftLimit, type Step } from '../step.js';

/** Fixed-window state: the window's start (µs, epoch-aligned) and the units admitted in it. */
export interface FixedWindowState {
  readonly start: number;
  readonly count: number;
}

/**
 * Fixed window: at most `limit` units per epoch-aligned window of `windowUs`. Refused requests are
 * not counted. When the clock steps back before the stored window, the stored window is used.
 */
export function fixedWindow(
  state: FixedWindowState | undefined,
  now: number,
  rule: Rule,
  cost: number,
): Step<FixedWindowState | undefined> {
  const W = rule.windowUs;
  const aligned = Math.floor(now / W) * W;
  // A clock that stepped back into an earlier window keeps counting in the stored (later) window:
  // starting the earlier window afresh would admit its units a second time.
  const start = state !== undefined && state.start > aligned ? state.start : aligned;
  const count = state !== undefined && state.start === start ? state.count : 0;
  const reset = start + W - now;
  const { after, outcome } = countInWindow(rule, count, cost, reset);
  // Nothing to write for a peek (cost 0) or a refusal.
  return { next: after === undefined || cost === 0 ? state : { start, count: after }, outcome };
}

/**
 * The state after forcing `cost` (>= 1) units in (a charge, see AlgorithmDefinition.charge): the
 * step with the limit lifted, so the units are counted where an admission would count them.
 */
export function fixedWindowCharge(state: FixedWindowState | undefined, now: number, rule: Rule, cost: number): FixedWindowState {
  return fixedWindow(state, now, liftLimit(rule), cost).next as FixedWindowState;
}
