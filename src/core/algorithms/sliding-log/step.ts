import { ruleOutcome } from '../../decision.js';
import type { Rule } from '../../rule.js';
import { liftLimit, ms, type Step } from '../step.js';

/**
 * Exact sliding log: one timestamp (µs) per admitted unit, oldest first. A unit admitted at `t`
 * counts during [t, t + W). At most `limit` units in ANY interval of length W.
 * The state array is treated as immutable: a commit returns a new array.
 */
export function slidingLog(
  log: readonly number[] | undefined,
  now: number,
  rule: Rule,
  cost: number,
): Step<readonly number[] | undefined> {
  const W = rule.windowUs;
  const limit = rule.limit;
  const entries = log ?? [];
  let first = 0;
  while (first < entries.length && (entries[first] as number) + W <= now) first++;
  const count = entries.length - first;
  if (count + cost <= limit) {
    const last = entries[entries.length - 1];
    // After a backward clock step, new units are stamped no earlier than the newest entry: the log
    // stays sorted (expiry scans and retry-after rely on it) and no unit expires before one
    // admitted ahead of it.
    const stamp = last !== undefined && last > now ? last : now;
    let next: readonly number[] | undefined = log;
    if (cost > 0) {
      const kept = entries.slice(first);
      for (let i = 0; i < cost; i++) kept.push(stamp);
      next = kept;
    }
    // Cost 0 writes nothing, not even pruning expired entries (the Store contract; a pruned log
    // and an unpruned one also decide differently once the clock steps back).
    const newest = cost > 0 ? stamp : last;
    const after = count + cost;
    return {
      next,
      outcome: ruleOutcome(
        rule.name,
        true,
        limit,
        /* remaining */ limit - after,
        /* resetMs */ after > 0 && newest !== undefined ? ms(newest + W - now) : 0,
        /* retryAfterMs */ 0,
        rule.windowMs,
      ),
    };
  }
  // The (count + cost - limit)-th oldest live unit must expire first.
  const mustExpire = entries[first + count + cost - limit - 1];
  // An empty (or fully expired) log can only be refused when cost > limit: nothing to wait for.
  const newest = entries[entries.length - 1];
  return {
    next: log,
    outcome: ruleOutcome(
      rule.name,
      false,
      limit,
      // A count beyond the limit is an overdraft left by a charge: nothing remains.
      /* remaining */ count > limit ? 0 : limit - count,
      /* resetMs */ newest === undefined ? 0 : ms(Math.max(0, newest + W - now)),
      /* retryAfterMs */ cost > limit || mustExpire === undefined ? Infinity : ms(mustExpire + W - now),
      rule.windowMs,
    ),
  };
}

/**
 * The log after forcing `cost` units in at `now` (a charge, see AlgorithmDefinition.charge),
 * stamped as an admission would be. Only the newest `limit + 1` units are kept: every decision
 * depends on the live count only up to `limit + 1` (beyond, it is refused with 0 remaining) and
 * on the (limit - cost + 1)-th newest unit (the one that must expire), so older ones change no
 * decision, and a large charge cannot grow the log beyond `limit + 1` entries.
 */
export function slidingLogCharge(log: readonly number[] | undefined, now: number, rule: Rule, cost: number): readonly number[] {
  const keep = rule.limit + 1;
  const next = slidingLog(log, now, liftLimit(rule), Math.min(cost, keep)).next as readonly number[];
  return next.length > keep ? next.slice(next.length - keep) : next;
}
