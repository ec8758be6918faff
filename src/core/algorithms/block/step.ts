import { ruleOutcome, type RuleOutcome } from '../../decision.js';
import type { Rule } from '../../rule.js';
import { ms, type Step } from '../step.js';

/** Block state: when the current (or last) block ends (µs) and how long it lasted (µs). */
export interface BlockState {
  readonly until: number;
  readonly lengthUs: number;
}

/**
 * The escalation of a block rule (see {@link blockRule}): each block that starts less than
 * `resetUs` after the previous one ended lasts `multiplier` times as long, up to `maxUs`.
 */
export interface BlockSpec {
  readonly multiplier: number;
  readonly maxUs: number;
  /** 0: never escalates (every block lasts the rule's `windowUs`). */
  readonly resetUs: number;
}

/**
 * Block (the penalty box), not a counter: consuming (any cost > 0) starts a block of the key, a
 * peek tells whether it is blocked. While blocked, every decision is refused (nothing written)
 * with the time left as `retryAfterMs`; so of two processes starting the same block at once,
 * the second is refused and the block is started once. A block that starts less than
 * `resetUs` after the previous one ended lasts `floor(previous * multiplier)` µs, capped at
 * `maxUs` (never below `windowUs`); later, it is back to `windowUs`. An admitted decision reports the length of the block
 * it starts (or would start, for a peek) as `resetMs`.
 */
export function block(state: BlockState | undefined, now: number, rule: Rule, cost: number): Step<BlockState | undefined> {
  if (state !== undefined && state.until > now) {
    const left = ms(state.until - now);
    return { next: state, outcome: outcomeOf(rule, false, 0, left, left) };
  }
  if (cost === 0) return { next: state, outcome: outcomeOf(rule, true, 1, 0, 0) };
  const spec = rule.block as BlockSpec;
  // Never below the first length: after a reload that lengthened it, the stored last block may be shorter.
  const lengthUs = state !== undefined && now - state.until < spec.resetUs ? Math.max(rule.windowUs, Math.min(Math.floor(state.lengthUs * spec.multiplier), spec.maxUs)) : rule.windowUs;
  return { next: { until: now + lengthUs, lengthUs }, outcome: outcomeOf(rule, true, 0, ms(lengthUs), 0) };
}

function outcomeOf(rule: Rule, allowed: boolean, remaining: number, resetMs: number, retryAfterMs: number): RuleOutcome {
  return ruleOutcome(rule.name, allowed, rule.burst, remaining, resetMs, retryAfterMs, rule.windowMs);
}
