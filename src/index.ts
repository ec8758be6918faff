/**
 * `sluice`: exact rate limiting. The entry point composes the core (algorithms, decision type,
 * limiter) with the default in-memory store.
 *
 * @example
 * ```ts
 * import { createLimiter } from 'sluice';
 * const limiter = createLimiter({ limits: [
 *   { name: 'per-second', limit: 10, windowMs: 1000 },
 *   { name: 'per-hour', limit: 1000, windowMs: 3_600_000, algorithm: 'sliding-window' },
 * ] });
 * const d = await limiter.consume('user:42');
 * if (!d.allowed) console.log(`retry in ${Math.ceil(d.retryAfterMs / 1000)} s (${d.policy})`);
 * ```
 */
import type { ConcurrencyOptions } from './core/algorithms/concurrency/index.js';
import type { Clock } from './core/clock.js';
import {
  concurrencyLimiterOn,
  limiterOn,
  type CommonOptions,
  type ConcurrencyLimiter,
  type Limiter,
  type LimiterRulesOptions,
} from './core/limiter.js';
import type { Store } from './core/store.js';
import { SluiceConfigError } from './core/errors.js';
import { MemoryStore } from './stores/memory-store.js';

export type { Decision, Lease, RuleOutcome } from './core/decision.js';
export { InvalidKeyError, SluiceConfigError, StoreError } from './core/errors.js';
export { manualClock, systemClock, type Clock, type ManualClock } from './core/clock.js';
export { MAX_LIMIT, MAX_SLIDING_LOG_LIMIT, MAX_WINDOW_MS, type Algorithm, type LimitOptions, type Rule } from './core/rule.js';
export type { ConcurrencyOptions, ConcurrencyRule } from './core/algorithms/concurrency/index.js';
export type { QuotaAnchorMode, QuotaOptions } from './core/algorithms/quota/index.js';
export type { QuotaPeriod } from './core/calendar.js';
export type { Store } from './core/store.js';
export type { CommonOptions, ConcurrencyLimiter, Limiter, LimiterRulesOptions } from './core/limiter.js';
export { MemoryStore, type MemoryStoreOptions } from './stores/memory-store.js';
export { FallbackStore, type FallbackStats, type FallbackStoreOptions, type StoreHealthEvent } from './stores/fallback-store.js';
export type { CircuitBreakerOptions } from './stores/circuit-breaker.js';

/** Where state lives, and the clock of the default store. */
export interface StoreOptions {
  /** The store (default: a new {@link MemoryStore}). */
  store?: Store;
  /** Clock for the default memory store (ignored when `store` is given). */
  clock?: Clock;
}

/** Options of {@link createLimiter}. */
export type LimiterOptions = LimiterRulesOptions & CommonOptions & StoreOptions;

/**
 * Create a rate limiter. Invalid options throw {@link SluiceConfigError} naming the field.
 */
export function createLimiter(options: LimiterOptions): Limiter {
  if (options === null || typeof options !== 'object') throw new SluiceConfigError('options', 'must be an object');
  const store = options.store ?? new MemoryStore(options.clock ? { clock: options.clock } : {});
  return limiterOn(store, options);
}

/** Create a concurrency limiter (acquire/release with a lease timeout). */
export function createConcurrencyLimiter(options: ConcurrencyOptions & CommonOptions & StoreOptions): ConcurrencyLimiter {
  if (options === null || typeof options !== 'object') throw new SluiceConfigError('options', 'must be an object');
  const store = options.store ?? new MemoryStore(options.clock ? { clock: options.clock } : {});
  return concurrencyLimiterOn(store, options);
}
