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
  /**
   * Charge `cost` more units to `key` under every rule, unconditionally: the real cost of a
   * request already admitted (e.g. tokens reported by the response). Never refused: the budget
   * may go below zero (an overdraft), and decisions then refuse every request until it is paid
   * back (the window passes, the bucket refills), with the exact wait in `retryAfterMs`. Atomic
   * over the rules like `decide`. Resolves with the state after the charge: `allowed` true
   * ("charged"), `remaining` 0 while overdrawn, `resetMs` until the key is back to its full limit,
   * `retryAfterMs` 0. `cost` 0 writes nothing. Rejects with RangeError for a cost that is not an
   * integer >= 0.
   */
  charge(key: string, rules: readonly Rule[], cost: number): Promise<Decision>;
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
  /** Synchronous {@link Store.charge} (throws where `charge` rejects). */
  chargeSync(key: string, rules: readonly Rule[], cost: number): Decision;
}

/** True when `store` offers the synchronous fast path. */
export function isSyncStore(store: Store): store is SyncStore {
  return typeof (store as Partial<SyncStore>).decideSync === "function" && typeof (store as Partial<SyncStore>).prepare === "function";
}
