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
 * outcome; refused units are not counted, and a cost above the whole limit never fits. Shared by
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
      /* remaining */ rule.limit - count,
      /* resetMs */ ms(resetUs),
      /* retryAfterMs */ cost > rule.limit ? Infinity : ms(resetUs),
      rule.windowMs,
    ),
  };
}
