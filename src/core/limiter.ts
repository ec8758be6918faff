import { randomUUID } from 'node:crypto';
import { compileConcurrencyRule, type ConcurrencyOptions, type ConcurrencyRule } from './algorithms/concurrency/index.js';
import type { Decision } from './decision.js';
import { SluiceConfigError } from './errors.js';
import { checkCost, checkKey, DEFAULT_MAX_KEY_LENGTH } from './key.js';
import { compileRule, compileRules, type LimitOptions, type Rule } from './rule.js';
import { isSyncStore, type Store } from './store.js';

/** Options shared by every limiter. */
export interface CommonOptions {
  /** Longest accepted key in UTF-16 code units (default 1024). Longer keys are refused with InvalidKeyError. */
  maxKeyLength?: number;
}

/**
 * Limiter options: either one limit's fields at the top level, or `limits` for several limits
 * decided atomically (all or nothing).
 */
export type LimiterRulesOptions =
  | (LimitOptions & { limits?: undefined })
  | { limits: readonly LimitOptions[]; limit?: undefined; windowMs?: undefined };

/** A rate limiter bound to a store. */
export interface Limiter {
  /** The validated rules, in configuration order. */
  readonly rules: readonly Rule[];
  /** The store decisions are made in. */
  readonly store: Store;
  /**
   * Consume `cost` units (default 1) for `key` under every rule at once. Resolves with the decision;
   * rejects with StoreError when the store fails, InvalidKeyError for a bad key.
   */
  consume(key: string, cost?: number): Promise<Decision>;
  /**
   * Synchronous consume, available when the store is synchronous (the memory store): no promise,
   * no microtask. Throws when the store is not synchronous.
   */
  consumeSync(key: string, cost?: number): Decision;
  /** The decision a request of `cost` (default 1) would get, without consuming anything. */
  peek(key: string, cost?: number): Promise<Decision>;
  /**
   * Charge `cost` more units to `key` under every rule, unconditionally: for a cost known only
   * once the work is done (an LLM upstream's tokens, a query's complexity). Admit with a small
   * `consume` first (any budget left), then charge the rest when the real cost is known. The
   * budget may go negative: following requests are refused until the overdraft is paid back (the
   * window passes, the bucket refills), and their `retryAfterMs` is the exact wait. Overdraft
   * bound: (requests admitted while budget remained) x (largest charge). Resolves with the state
   * after the charge (`allowed` true, `remaining` 0 while overdrawn). `cost` 0 writes nothing;
   * a cost that is not an integer >= 0 rejects with RangeError.
   */
  charge(key: string, cost: number): Promise<Decision>;
  /** Forget the key's state under every rule. */
  reset(key: string): Promise<void>;
}

function maxKeyLengthOf(options: CommonOptions): number {
  const m = options.maxKeyLength ?? DEFAULT_MAX_KEY_LENGTH;
  if (!Number.isInteger(m) || m < 1 || m > 65_536) {
    throw new SluiceConfigError('maxKeyLength', `must be an integer between 1 and 65536, got ${String(m)}`);
  }
  return m;
}

/** Compile the rules of limiter options (one limit at top level, or `limits`). */
export function rulesOf(options: LimiterRulesOptions): Rule[] {
  if (options === null || typeof options !== 'object') {
    throw new SluiceConfigError('options', 'must be an object');
  }
  if (options.limits !== undefined) {
    for (const field of ['limit', 'windowMs', 'burst', 'algorithm'] as const) {
      if ((options as Record<string, unknown>)[field] !== undefined) {
        throw new SluiceConfigError('limits', `give either "limits" or a single "${field}", not both`);
      }
    }
    return compileRules(options.limits);
  }
  return [compileRule(options as LimitOptions)];
}

/** Build a limiter over an existing store. */
export function limiterOn(store: Store, options: LimiterRulesOptions & CommonOptions): Limiter {
  const rules = rulesOf(options);
  const maxKeyLength = maxKeyLengthOf(options);
  const sync = isSyncStore(store) ? store.prepare(rules) : undefined;

  const consumeSync = (key: string, cost = 1): Decision => {
    if (sync === undefined) throw new TypeError('consumeSync needs a synchronous store (MemoryStore)');
    checkKey(key, maxKeyLength);
    checkCost(cost);
    return sync(key, cost, false);
  };
  const decide = (key: string, cost: number, peek = false): Promise<Decision> => {
    try {
      checkKey(key, maxKeyLength);
      checkCost(cost);
    } catch (err) {
      return Promise.reject(err);
    }
    if (sync !== undefined) {
      try {
        return Promise.resolve(sync(key, cost, peek));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return store.decide(key, rules, cost, peek);
  };

  return {
    rules,
    store,
    consume: (key, cost = 1) => decide(key, cost),
    consumeSync,
    peek: (key, cost = 1) => decide(key, cost, true),
    charge: (key, cost) => {
      try {
        checkKey(key, maxKeyLength);
        checkCost(cost);
      } catch (err) {
        return Promise.reject(err);
      }
      return store.charge(key, rules, cost);
    },
    reset: (key) => {
      try {
        checkKey(key, maxKeyLength);
      } catch (err) {
        return Promise.reject(err);
      }
      return store.reset(key, rules);
    },
  };
}

/** A concurrency limiter: at most `limit` units held at once per key, each under an expiring lease. */
export interface ConcurrencyLimiter {
  readonly rule: ConcurrencyRule;
  /**
   * Try to take `cost` units (default 1). When admitted the decision carries `lease`; call
   * `lease.release()` when the work ends (it also frees itself after `leaseMs`).
   */
  acquire(key: string, cost?: number): Promise<Decision>;
  /** Release a lease by id (what `lease.release()` does). */
  release(key: string, leaseId: string): Promise<void>;
}

/** Build a concurrency limiter over an existing store. */
export function concurrencyLimiterOn(store: Store, options: ConcurrencyOptions & CommonOptions): ConcurrencyLimiter {
  const rule = compileConcurrencyRule(options);
  const maxKeyLength = maxKeyLengthOf(options);
  const release = (key: string, leaseId: string) => store.release(key, rule, leaseId);
  return {
    rule,
    release,
    async acquire(key, cost = 1) {
      checkKey(key, maxKeyLength);
      checkCost(cost);
      const id = randomUUID();
      const d = await store.acquire(key, rule, cost, id);
      if (!d.allowed || cost === 0) return d;
      let released: Promise<void> | undefined;
      return {
        ...d,
        lease: {
          id,
          expiresAt: Date.now() + rule.leaseMs,
          release: () => (released ??= release(key, id)),
        },
      };
    },
  };
}
