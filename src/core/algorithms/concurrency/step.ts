import { ruleOutcome } from '../../decision.js';
import { SluiceConfigError } from '../../errors.js';
import { describe } from '../../rule.js';
import { MAX_LIMIT } from '../limits.js';
import { ms, type Step } from '../step.js';

/** Options of a concurrency limit: at most `limit` units held at once per key. */
export interface ConcurrencyOptions {
  /** Name reported in decisions. Default `concurrency`. */
  name?: string;
  /** Units that may be held at once. */
  limit: number;
  /**
   * A lease frees itself after this many milliseconds even if never released, so a crashed holder
   * cannot leak a slot. Default 60 000.
   */
  leaseMs?: number;
}

/** Validated concurrency rule. */
export interface ConcurrencyRule {
  readonly name: string;
  readonly id: string;
  readonly limit: number;
  readonly leaseMs: number;
  readonly leaseUs: number;
}

/** One held lease. */
export interface LeaseEntry {
  readonly id: string;
  readonly cost: number;
  /** Expiry in µs. */
  readonly expires: number;
}

/** Validate concurrency options; throws {@link SluiceConfigError} naming the field. */
export function compileConcurrencyRule(options: ConcurrencyOptions): ConcurrencyRule {
  if (options === null || typeof options !== 'object') {
    throw new SluiceConfigError('concurrency', `must be an object, got ${describe(options)}`);
  }
  const { limit } = options;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new SluiceConfigError('limit', `must be an integer between 1 and ${MAX_LIMIT}, got ${describe(limit)}`);
  }
  const leaseMs = options.leaseMs ?? 60_000;
  if (typeof leaseMs !== 'number' || !Number.isFinite(leaseMs) || leaseMs < 1 || leaseMs > 366 * 86_400_000) {
    throw new SluiceConfigError('leaseMs', `must be a number of milliseconds between 1 and one year, got ${describe(leaseMs)}`);
  }
  const name = options.name ?? 'concurrency';
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
    throw new SluiceConfigError('name', 'must be a non-empty string of at most 200 characters');
  }
  return { name, id: `concurrency:${name}`, limit, leaseMs, leaseUs: Math.round(leaseMs * 1000) };
}

/**
 * Try to acquire `cost` units under a new lease `leaseId`. Expired leases are dropped first.
 * The retry-after on refusal is when enough leases will have expired for `cost` to fit (an upper
 * bound: a release may come sooner).
 */
export function acquire(
  leases: readonly LeaseEntry[] | undefined,
  now: number,
  rule: ConcurrencyRule,
  cost: number,
  leaseId: string,
): Step<readonly LeaseEntry[]> {
  const live = (leases ?? []).filter((l) => l.expires > now);
  let held = 0;
  let latest = 0;
  for (const l of live) {
    held += l.cost;
    if (l.expires > latest) latest = l.expires;
  }
  if (held + cost <= rule.limit) {
    const next = cost > 0 ? [...live, { id: leaseId, cost, expires: now + rule.leaseUs }] : live;
    return {
      next,
      outcome: ruleOutcome(
        rule.name,
        true,
        rule.limit,
        /* remaining */ rule.limit - held - cost,
        /* resetMs */ cost > 0 ? ms(rule.leaseUs) : ms(latest > now ? latest - now : 0),
        /* retryAfterMs */ 0,
        rule.leaseMs,
      ),
    };
  }
  return {
    next: live,
    outcome: ruleOutcome(
      rule.name,
      false,
      rule.limit,
      /* remaining */ rule.limit - held,
      // No live lease (only possible when cost > limit): nothing to wait for.
      /* resetMs */ ms(latest > now ? latest - now : 0),
      /* retryAfterMs */ cost > rule.limit ? Infinity : ms(freedAt(live, held + cost - rule.limit) - now),
      rule.leaseMs,
    ),
  };
}

/**
 * When at least `units` held units will have expired (µs): the expiry of the lease that completes
 * them, taking leases in order of expiry.
 */
function freedAt(live: readonly LeaseEntry[], units: number): number {
  const byExpiry = [...live].sort((a, b) => a.expires - b.expires);
  let freed = 0;
  for (const l of byExpiry) {
    freed += l.cost;
    if (freed >= units) return l.expires;
  }
  return Infinity;
}

/** Remove lease `leaseId` (and any expired ones). */
export function release(leases: readonly LeaseEntry[] | undefined, now: number, leaseId: string): LeaseEntry[] {
  return (leases ?? []).filter((l) => l.id !== leaseId && l.expires > now);
}
