import type { ConcurrencyRule } from './algorithms/concurrency/index.js';
import type { Decision } from './decision.js';
import type { Rule } from './rule.js';

/**
 * The one interface every store implements. A store evaluates the rules of one key atomically:
 * it commits to every rule only when every rule admits (a refused request consumes from none).
 * Failures reject with {@link StoreError}.
 */
export interface Store {
  /**
   * Decide `cost` units for `key` under `rules`. With `peek` true (or `cost` 0) nothing is
   * written: the decision is what the request would get.
   */
  decide(key: string, rules: readonly Rule[], cost: number, peek?: boolean): Promise<Decision>;
  /** Forget the key's state under `rules`. */
  reset(key: string, rules: readonly Rule[]): Promise<void>;
  /** Acquire `cost` concurrency units under a new lease `leaseId` (no `lease` on the result). */
  acquire(key: string, rule: ConcurrencyRule, cost: number, leaseId: string): Promise<Decision>;
  /** Release lease `leaseId`. Releasing an unknown or expired lease is a no-op. */
  release(key: string, rule: ConcurrencyRule, leaseId: string): Promise<void>;
  /** Release resources (timers, connections). */
  close(): Promise<void>;
}

/** A decision function bound to a fixed list of rules (see {@link SyncStore.prepare}). */
export type Decider = (key: string, cost: number, peek: boolean) => Decision;

/** A store that can also decide synchronously (the in-memory store). */
export interface SyncStore extends Store {
  /** Bind `rules` once so each decision skips the per-rule lookups: the synchronous fast path. */
  prepare(rules: readonly Rule[]): Decider;
  decideSync(key: string, rules: readonly Rule[], cost: number, peek?: boolean): Decision;
}

/** True when `store` offers the synchronous fast path. */
export function isSyncStore(store: Store): store is SyncStore {
  return typeof (store as Partial<SyncStore>).decideSync === "function" && typeof (store as Partial<SyncStore>).prepare === "function";
}
