/**
 * Failed-authentication protection (the server side of a client's auth retry loop): count only
 * responses with the configured statuses, and after `threshold` of them within the window refuse
 * the identifier for a penalty period.
 *
 * Both halves live in the ordinary store, so they work the same on memory and Redis:
 * - failures are consumed from the policy's counting rule (`threshold` per window);
 * - the penalty is a GCRA rule of one unit per penalty period: consuming that unit blocks the key
 *   for exactly the penalty, and a peek at it (no write) tells whether the key is blocked and for
 *   how long.
 */
import type { Decision } from '../core/decision.js';
import type { Rule } from '../core/rule.js';
import type { CompiledPolicy } from './options.js';

/** How the engine asks its store. */
export type DecideFn = (key: string, rules: readonly Rule[], cost: number, peek: boolean) => Promise<Decision>;

/** Is `key` serving a penalty under `policy`? Resolves with the peek decision (refused = blocked). */
export function penaltyStatus(decide: DecideFn, policy: CompiledPolicy, key: string): Promise<Decision> {
  const fa = policy.failedAuth as NonNullable<CompiledPolicy['failedAuth']>;
  return decide(key, [fa.penaltyRule], 1, true);
}

/**
 * Record a finished response. Counts it when its status is one of `countStatuses`; starts the
 * penalty when this failure used up the threshold. Resolves `true` when a penalty started.
 */
export async function recordOutcome(decide: DecideFn, policy: CompiledPolicy, key: string, status: number): Promise<boolean> {
  const fa = policy.failedAuth as NonNullable<CompiledPolicy['failedAuth']>;
  if (!fa.countStatuses.has(status)) return false;
  const d = await decide(key, [policy.rule], 1, false);
  if (d.allowed && d.remaining > 0) return false;
  const p = await decide(key, [fa.penaltyRule], 1, false);
  return p.allowed;
}
