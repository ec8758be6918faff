import { ruleOutcome, type RuleOutcome } from '../decision.js';
import type { Rule } from '../rule.js';

/**
 * What an algorithm returns for one rule: the outcome, and the state to store if the whole
 * decision commits (every rule admitted). Algorithms are pure functions of (state, now).
 */
export interface Step<S> {
  readonly outcome: RuleOutcome;
  /** State to write when the decision commits; ignored when it does not. */
  readonly next: S;
}

/** µs → ms for outcomes. */
export const ms = (us: number): number => us / 1000;

/**
 * A counter that resets when its window ends (`resetUs` from now): `cost` more units fit when the
 * count stays within the limit. Returns the count after admission (undefined when refused) and the
 * outcome; refused units are not counted, and a cost above the whole limit never fits (a count
 * beyond the limit, an overdraft left by a charge, reports 0 remaining). Shared by
 * the window counters (fixed window, quota), which differ only in where the window lies.
 */
export function countInWindow(rule: Rule, count: number, cost: number, resetUs: number): { after: number | undefined; outcome: RuleOutcome } {
  if (count + cost <= rule.limit) {
    const after = count + cost;
    return {
      after,
      outcome: ruleOutcome(
        rule.name,
        true,
        rule.limit,
        /* remaining */ rule.limit - after,
        /* resetMs */ after === 0 ? 0 : ms(resetUs),
        /* retryAfterMs */ 0,
        rule.windowMs,
      ),
    };
  }
  return {
    after: undefined,
    outcome: ruleOutcome(
      rule.name,
      false,
      rule.limit,
      /* remaining */ count > rule.limit ? 0 : rule.limit - count,
      /* resetMs */ ms(resetUs),
      /* retryAfterMs */ cost > rule.limit ? Infinity : ms(resetUs),
      rule.windowMs,
    ),
  };
}

const lifted = new WeakMap<Rule, Rule>();

/**
 * The rule with no limit: the step of a window algorithm under it admits any cost, so
 * `step(state, now, liftLimit(rule), cost).next` is the state after forcing `cost` units in (a
 * charge), counted in the same window by the same arithmetic as an admission.
 */
export function liftLimit(rule: Rule): Rule {
  let r = lifted.get(rule);
  if (r === undefined) {
    r = { ...rule, limit: Infinity };
    lifted.set(rule, r);
  }
  return r;
}

/**
 * The outcome a charge reports for one rule: the state after the charge as a cost-0 step sees it
 * (`outcome`), marked allowed ("charged": a charge is never refused) with no wait. `remaining`
 * is 0 while overdrawn.
 */
export function charged(outcome: RuleOutcome): RuleOutcome {
  return outcome.allowed ? outcome : ruleOutcome(outcome.policy, true, outcome.limit, outcome.remaining, outcome.resetMs, 0, outcome.windowMs);
}
