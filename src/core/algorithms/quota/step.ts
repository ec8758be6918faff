import type { Rule } from '../../rule.js';
import { countInWindow, liftLimit, type Step } from '../step.js';
import { periodOf } from './period.js';

/**
 * Quota state: the anchor periods are counted from (µs, a whole millisecond: the first call's,
 * or the rule's calendar/billing anchor), the current period's start (µs) and the units admitted
 * in it.
 */
export interface QuotaState {
  readonly anchor: number;
  readonly start: number;
  readonly count: number;
}

/**
 * Quota: at most `limit` units per period (hourly / daily / weekly / monthly in UTC, or a fixed
 * `windowUs`), counted from the anchor. Refused requests are not counted. A refusal waits until
 * the period ends (Infinity when the cost exceeds the whole allowance). When the clock steps back
 * before the stored period, the stored period keeps counting (as the fixed window does). A
 * calendar rule whose anchor changed (a consumer's new billing date) starts counting afresh in
 * the new anchor's period.
 */
export function quota(state: QuotaState | undefined, now: number, rule: Rule, cost: number): Step<QuotaState | undefined> {
  const ruleAnchor = rule.quota?.anchorUs;
  // First-api-call: the anchor is the stored one, or this call's millisecond.
  const anchor = ruleAnchor ?? state?.anchor ?? Math.floor(now / 1000) * 1000;
  const same = state !== undefined && state.anchor === anchor;
  let p = periodOf(rule, anchor, now);
  if (same && state.start > p.start) p = periodOf(rule, anchor, state.start);
  const count = same && state.start === p.start ? state.count : 0;
  const reset = p.end - now;
  const { after, outcome } = countInWindow(rule, count, cost, reset);
  // Nothing to write for a peek (cost 0) or a refusal.
  return { next: after === undefined || cost === 0 ? state : { anchor, start: p.start, count: after }, outcome };
}

/**
 * The state after forcing `cost` (>= 1) units in (a charge, see AlgorithmDefinition.charge): the
 * step with the limit lifted, so the units are counted where an admission would count them.
 */
export function quotaCharge(state: QuotaState | undefined, now: number, rule: Rule, cost: number): QuotaState {
  return quota(state, now, liftLimit(rule), cost).next as QuotaState;
}
