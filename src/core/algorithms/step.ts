import type { RuleOutcome } from '../decision.js';

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
