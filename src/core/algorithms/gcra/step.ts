import type { Rule } from '../../rule.js';
import { ruleOutcome } from '../../decision.js';
import { ms, type Step } from '../step.js';

/**
 * GCRA (generic cell rate algorithm), the exact form of a token bucket with one stored number per
 * key: the theoretical arrival time (TAT) in µs. Emission interval T = window / limit,
 * tolerance tau = T * burst. A request of cost c is admitted iff max(TAT, now) + c*T - tau <= now.
 * Refused requests do not move the TAT, so hammering never extends the wait.
 *
 * @param tat stored TAT in µs, or undefined for a fresh key
 * @param now current time in µs
 */
export function gcra(tat: number | undefined, now: number, rule: Rule, cost: number): Step<number | undefined> {
  const T = rule.intervalUs;
  const tau = rule.tauUs;
  const base = tat === undefined || tat < now ? now : tat;
  const newTat = base + T * cost;
  const allowAt = newTat - tau;
  if (allowAt <= now) {
    return {
      next: cost === 0 ? tat : newTat,
      outcome: ruleOutcome(
        rule.name,
        true,
        rule.burst,
        /* remaining */ Math.floor((now + tau - newTat) / T),
        /* resetMs */ ms(newTat - now),
        /* retryAfterMs */ 0,
        rule.windowMs,
      ),
    };
  }
  return {
    next: tat,
    outcome: ruleOutcome(
      rule.name,
      false,
      rule.burst,
      /* remaining */ Math.max(0, Math.floor((now + tau - base) / T)),
      /* resetMs */ ms(base - now),
      /* retryAfterMs */ cost > rule.burst ? Infinity : ms(allowAt - now),
      rule.windowMs,
    ),
  };
}

/**
 * Farthest a charge moves the TAT past now, in µs (63 years: twice the longest tau a rule may
 * have). Only absurd charges reach it; it keeps every TAT exact in a double and its Redis expiry
 * an integer Lua still prints in full.
 */
export const MAX_CHARGE_AHEAD_US = 2e15;

/**
 * The TAT after forcing `cost` units in (a charge, see AlgorithmDefinition.charge):
 * max(TAT, now) + cost * T, capped at now + {@link MAX_CHARGE_AHEAD_US} (never lowered). While
 * TAT - tau > now (an overdraft) `gcra` refuses every cost, and its retry-after is the exact time
 * until the requested cost fits again.
 */
export function gcraCharge(tat: number | undefined, now: number, rule: Rule, cost: number): number {
  const base = tat === undefined || tat < now ? now : tat;
  const cap = Math.max(base, now + MAX_CHARGE_AHEAD_US);
  return Math.min(base + rule.intervalUs * cost, cap);
}
