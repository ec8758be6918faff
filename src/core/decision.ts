/**
 * The one decision type that flows through every layer of Sluice: algorithms produce it, stores
 * return it, the HTTP layer writes headers and 429s from it, observability logs it.
 *
 * All durations are in milliseconds. They are exact (computed from the stored state at decision
 * time), so `Retry-After` and the IETF `RateLimit` fields can be written with no second store call.
 */

/** What one rule (one limit) said about one request. */
export interface RuleOutcome {
  /** Name of the rule (policy) that produced this outcome, e.g. `"per-second"`. */
  readonly policy: string;
  /** Whether this rule alone would admit the request. */
  readonly allowed: boolean;
  /**
   * The most requests (cost units) this rule can admit at once from a fresh state: `burst` for
   * GCRA, `limit` for window algorithms and the concurrency limiter.
   */
  readonly limit: number;
  /**
   * Units still available right now after this decision. When refused, what is available now
   * (nothing was taken): 0 for a cost of 1, possibly more when a larger cost did not fit.
   */
  readonly remaining: number;
  /** Milliseconds until the rule is back to its full `limit` (state fully drained). */
  readonly resetMs: number;
  /**
   * Milliseconds until a request of the same cost would be admitted by this rule; 0 when allowed.
   * `Infinity` when the cost can never be admitted (cost larger than the limit).
   */
  readonly retryAfterMs: number;
  /** The rule's window in milliseconds (the IETF `w` parameter). */
  readonly windowMs: number;
}

/** The result of `consume`/`peek`/`charge`: the combined verdict of every rule evaluated for the key. */
export interface Decision extends RuleOutcome {
  /** The key that was evaluated (as given by the caller, before any store prefixing). */
  readonly key: string;
  /** The cost (weight) that was asked for. */
  readonly cost: number;
  /**
   * Every rule's own outcome, in configuration order. The top-level fields copy the deciding rule:
   * the refusing rule with the longest `retryAfterMs` when refused, otherwise the rule with the
   * fewest `remaining` units.
   */
  readonly policies: readonly RuleOutcome[];
  /** For concurrency limits: the lease to release when the work ends. */
  readonly lease?: Lease;
}

/** A held concurrency slot. */
export interface Lease {
  /** Opaque id, unique per acquisition. */
  readonly id: string;
  /** Epoch milliseconds after which the slot frees itself even if never released. */
  readonly expiresAt: number;
  /** Give the slot back. Idempotent. */
  release(): Promise<void>;
}

/*
 * Outcomes and decisions are built with `new` (classes below, `new Array`), never with object or
 * array literals. V8 tracks where literals are allocated and, once most objects from one site
 * outlive a young-generation collection (as decisions do while a batch of awaited promises holds
 * them), allocates every later object from that site straight into the old generation, where
 * each one dies only at a full mark-and-sweep. Constructor calls are not tracked that way, so a
 * decision always dies young and cheap. Measured on `consume` (docs/benchmarks.md, memory store):
 * 1.4-2.1 µs of CPU per decision with pretenured literals against 0.35-0.6 µs without. The objects
 * stay plain data: own enumerable fields in the order of the interfaces, spread, `JSON.stringify`
 * and `structuredClone` as before.
 */

class Outcome implements RuleOutcome {
  declare readonly policy: string;
  declare readonly allowed: boolean;
  declare readonly limit: number;
  declare readonly remaining: number;
  declare readonly resetMs: number;
  declare readonly retryAfterMs: number;
  declare readonly windowMs: number;

  constructor(policy: string, allowed: boolean, limit: number, remaining: number, resetMs: number, retryAfterMs: number, windowMs: number) {
    this.policy = policy;
    this.allowed = allowed;
    this.limit = limit;
    this.remaining = remaining;
    this.resetMs = resetMs;
    this.retryAfterMs = retryAfterMs;
    this.windowMs = windowMs;
  }
}

class CombinedDecision implements Decision {
  declare readonly key: string;
  declare readonly cost: number;
  declare readonly policy: string;
  declare readonly allowed: boolean;
  declare readonly limit: number;
  declare readonly remaining: number;
  declare readonly resetMs: number;
  declare readonly retryAfterMs: number;
  declare readonly windowMs: number;
  declare readonly policies: readonly RuleOutcome[];

  constructor(key: string, cost: number, decider: RuleOutcome, allowed: boolean, policies: readonly RuleOutcome[]) {
    this.key = key;
    this.cost = cost;
    this.policy = decider.policy;
    this.allowed = allowed;
    this.limit = decider.limit;
    this.remaining = decider.remaining;
    this.resetMs = decider.resetMs;
    this.retryAfterMs = allowed ? 0 : decider.retryAfterMs;
    this.windowMs = decider.windowMs;
    this.policies = policies;
  }
}

/** One rule's outcome (arguments in the order of the {@link RuleOutcome} fields). */
export function ruleOutcome(
  policy: string,
  allowed: boolean,
  limit: number,
  remaining: number,
  resetMs: number,
  retryAfterMs: number,
  windowMs: number,
): RuleOutcome {
  return new Outcome(policy, allowed, limit, remaining, resetMs, retryAfterMs, windowMs);
}

/** The decision of a single rule (the hot path of every store: no search, one array). */
export function singleDecision(key: string, cost: number, o: RuleOutcome): Decision {
  // `new Array(1)`, not `[o]`: see above.
  const policies = new Array<RuleOutcome>(1);
  policies[0] = o;
  return new CombinedDecision(key, cost, o, o.allowed, policies);
}

/**
 * Combine per-rule outcomes into one decision. A refused request is refused by the rule that makes
 * the client wait longest; an admitted one is described by the tightest rule.
 */
export function combine(key: string, cost: number, outcomes: readonly RuleOutcome[]): Decision {
  let decider: RuleOutcome | undefined;
  let allowed = true;
  for (const o of outcomes) {
    if (!o.allowed) {
      if (allowed || decider === undefined || o.retryAfterMs > decider.retryAfterMs) decider = o;
      allowed = false;
    } else if (allowed && (decider === undefined || o.remaining < decider.remaining)) {
      decider = o;
    }
  }
  if (decider === undefined) throw new Error('combine: at least one rule outcome is required');
  return new CombinedDecision(key, cost, decider, allowed, outcomes);
}
