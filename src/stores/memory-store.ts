import type { AlgorithmDefinition } from '../core/algorithms/algorithm.js';
import { acquire, release, type ConcurrencyRule, type LeaseEntry } from '../core/algorithms/concurrency/index.js';
import { algorithmOf } from '../core/algorithms/registry.js';
import { charged, type Step } from '../core/algorithms/step.js';
import { systemClock, toMicros, type Clock } from '../core/clock.js';
import { combine, singleDecision, type Decision } from '../core/decision.js';
import { SluiceConfigError } from '../core/errors.js';
import { checkCost } from '../core/key.js';
import type { Rule } from '../core/rule.js';
import type { Decider, SyncStore } from '../core/store.js';
import { totalmem } from 'node:os';
import { SlotTable } from './slot-table.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Time source, epoch ms. Default `Date.now`. */
  clock?: Clock;
  /**
   * Most keys held per rule (default: see `maxBytes`). Keys whose state has expired are recycled first;
   * beyond that the least recently used key is dropped (CLOCK approximation of LRU), and a dropped
   * key that was still limited starts fresh. Set it above the number of keys active within one
   * window; `evictedLive` counts the times it was too small.
   */
  maxKeys?: number;
  /**
   * Memory budget of each rule's key table, in bytes: the table holds at most
   * `floor(maxBytes / MEMORY_BYTES_PER_KEY)` keys. Give `maxKeys` or `maxBytes`, not both.
   * Without either, a rule holds up to 1 000 000 keys or as many as fit in 1/16 of the memory
   * available to the process (cgroup limit or physical memory), whichever is fewer.
   */
  maxBytes?: number;
}

/**
 * Bytes one key costs in a rule's table (heap + typed arrays), for keys of about 200 characters
 * (the longest an identity is kept raw; longer ones are hashed): 451-462 B measured with
 * `node --expose-gc` at 140 000-200 000 keys, rounded up. An 18-character key (`ip:` + IPv4)
 * costs 184-201 B, so the bound is conservative for short keys. (Measured when every table
 * also held a number array it did not use; 8 B less a key since.)
 */
export const MEMORY_BYTES_PER_KEY = 500;

/** The default key bound: 1 000 000, or what fits in 1/16 of the memory this process may use. */
export function defaultMaxKeys(memoryBytes = availableMemory()): number {
  return Math.max(1024, Math.min(1_000_000, Math.floor(memoryBytes / 16 / MEMORY_BYTES_PER_KEY)));
}

function availableMemory(): number {
  const limit = process.constrainedMemory?.() ?? 0;
  const total = totalmem();
  // Without a cgroup limit Node reports 0 or a huge sentinel: physical memory is the bound then.
  return limit > 0 && limit < total ? limit : total;
}

/** Object state of any algorithm (window counters, logs, leases); numeric states live in `nums`. */
type ObjectState = object;
type State = unknown;
type Algorithm = AlgorithmDefinition<State>;

/**
 * The embedded default store: process-local, synchronous, bounded. Decisions are exact and atomic
 * within the process (JavaScript runs one decision at a time).
 */
export class MemoryStore implements SyncStore {
  private readonly clock: Clock;
  private readonly maxKeys: number;
  private readonly tables = new Map<string, SlotTable<ObjectState>>();

  constructor(options: MemoryStoreOptions = {}) {
    if (options === null || typeof options !== 'object') throw new SluiceConfigError('options', 'must be an object');
    this.clock = options.clock ?? systemClock;
    if (typeof this.clock !== 'function') throw new SluiceConfigError('clock', 'must be a function returning epoch ms');
    if (options.maxKeys !== undefined && options.maxBytes !== undefined) throw new SluiceConfigError('maxBytes', 'give maxKeys or maxBytes, not both');
    const maxBytes = options.maxBytes;
    if (maxBytes !== undefined && (typeof maxBytes !== 'number' || !Number.isFinite(maxBytes) || maxBytes < MEMORY_BYTES_PER_KEY)) {
      throw new SluiceConfigError('maxBytes', `must be a number of bytes >= ${MEMORY_BYTES_PER_KEY} (one key), got ${String(maxBytes)}`);
    }
    const maxKeys = options.maxKeys ?? (maxBytes !== undefined ? Math.min(1e8, Math.floor(maxBytes / MEMORY_BYTES_PER_KEY)) : defaultMaxKeys());
    if (!Number.isInteger(maxKeys) || maxKeys < 1 || maxKeys > 1e8) {
      throw new SluiceConfigError('maxKeys', `must be an integer between 1 and 1e8, got ${String(maxKeys)}`);
    }
    this.maxKeys = maxKeys;
  }

  private table(rule: Rule | ConcurrencyRule): SlotTable<ObjectState> {
    let t = this.tables.get(rule.id);
    if (t === undefined) {
      t = new SlotTable<ObjectState>(this.maxKeys, 'algorithm' in rule && algorithmOf(rule).numericDeadline);
      this.tables.set(rule.id, t);
    }
    return t;
  }

  /**
   * Resolve the rules' tables once and return a decision function for them (the limiter calls
   * this at construction, so the hot path does no table lookup).
   */
  prepare(rules: readonly Rule[]): Decider {
    const first = rules[0];
    const algorithms = rules.map(algorithmOf);
    const firstAlgorithm = algorithms[0];
    if (rules.length === 1 && first !== undefined && firstAlgorithm?.numericDeadline === true) {
      const rule = first;
      const table = this.table(rule);
      const clock = this.clock;
      const step = firstAlgorithm.step;
      // The fast path of a numeric state (GCRA): one Map lookup, a typed-array write.
      return (key, cost, peek) => {
        const now = toMicros(clock());
        let slot = table.find(key);
        const s = step(slot < 0 ? undefined : table.nums[slot], now, rule, cost);
        if (slot >= 0) table.use(slot);
        if (s.outcome.allowed && cost > 0 && !peek) {
          if (slot < 0) slot = table.insert(key, now);
          table.nums[slot] = s.next as number;
        }
        return singleDecision(key, cost, s.outcome);
      };
    }
    const tables = rules.map((r) => this.table(r));
    return (key, cost, peek) => this.decideWith(tables, algorithms, rules, key, cost, peek);
  }

  private read(table: SlotTable<ObjectState>, algorithm: Algorithm, slot: number): State {
    if (slot < 0) return undefined;
    return algorithm.numericDeadline ? table.nums[slot] : table.objs[slot];
  }

  private write(table: SlotTable<ObjectState>, algorithm: Algorithm, rule: Rule, key: string, slot: number, next: State, now: number): void {
    const s = slot < 0 ? table.insert(key, now) : slot;
    if (algorithm.numericDeadline) table.nums[s] = next as number;
    else table.objs[s] = next as ObjectState;
    const deadAt = next === undefined ? 0 : algorithm.deadAt(next, rule);
    // A new key is inserted cold (see SlotTable): only a repeat use marks it.
    if (slot < 0) table.expire(s, deadAt);
    else table.touch(s, deadAt);
  }

  private decideWith(
    tables: readonly SlotTable<ObjectState>[],
    algorithms: readonly Algorithm[],
    rules: readonly Rule[],
    key: string,
    cost: number,
    peek: boolean,
  ): Decision {
    const now = toMicros(this.clock());
    const slots = tables.map((t) => t.find(key));
    const states = algorithms.map((a, i) => this.read(tables[i] as SlotTable<ObjectState>, a, slots[i] as number));
    const steps = algorithms.map((a, i) => a.step(states[i], now, rules[i] as Rule, cost));
    const all = steps.every((s) => s.outcome.allowed);
    if (all && !peek) {
      steps.forEach((s, i) => {
        const slot = slots[i] as number;
        const table = tables[i] as SlotTable<ObjectState>;
        if (s.next !== states[i]) this.write(table, algorithms[i] as Algorithm, rules[i] as Rule, key, slot, s.next, now);
        else if (slot >= 0) table.use(slot);
      });
    } else {
      slots.forEach((slot, i) => {
        if (slot >= 0) (tables[i] as SlotTable<ObjectState>).use(slot);
      });
    }
    if (rules.length === 1) return singleDecision(key, cost, (steps[0] as Step<State>).outcome);
    // When refused, admitting rules are reported as they stand (nothing was taken from them).
    const outcomes = all
      ? steps.map((s) => s.outcome)
      : steps.map((s, i) => (s.outcome.allowed ? (algorithms[i] as Algorithm).step(states[i], now, rules[i] as Rule, 0).outcome : s.outcome));
    return combine(key, cost, outcomes);
  }

  decideSync(key: string, rules: readonly Rule[], cost: number, peek = false): Decision {
    return this.decideWith(
      rules.map((r) => this.table(r)),
      rules.map(algorithmOf),
      rules,
      key,
      cost,
      peek,
    );
  }

  decide(key: string, rules: readonly Rule[], cost: number, peek = false): Promise<Decision> {
    try {
      return Promise.resolve(this.decideSync(key, rules, cost, peek));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  chargeSync(key: string, rules: readonly Rule[], cost: number): Decision {
    checkCost(cost);
    const now = toMicros(this.clock());
    const outcomes = rules.map((rule) => {
      const algorithm = algorithmOf(rule);
      const table = this.table(rule);
      const slot = table.find(key);
      let state = this.read(table, algorithm, slot);
      if (cost > 0) {
        state = algorithm.charge(state, now, rule, cost);
        this.write(table, algorithm, rule, key, slot, state, now);
      } else if (slot >= 0) table.use(slot);
      // The state after the charge as a request of cost 0 sees it.
      return charged(algorithm.step(state, now, rule, 0).outcome);
    });
    return rules.length === 1 ? singleDecision(key, cost, outcomes[0] as Decision) : combine(key, cost, outcomes);
  }

  charge(key: string, rules: readonly Rule[], cost: number): Promise<Decision> {
    try {
      return Promise.resolve(this.chargeSync(key, rules, cost));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  reset(key: string, rules: readonly Rule[]): Promise<void> {
    for (const r of rules) this.tables.get(r.id)?.delete(key);
    return Promise.resolve();
  }

  acquire(key: string, rule: ConcurrencyRule, cost: number, leaseId: string): Promise<Decision> {
    const table = this.table(rule);
    const now = toMicros(this.clock());
    const slot = table.find(key);
    const s = acquire(slot < 0 ? undefined : (table.objs[slot] as readonly LeaseEntry[]), now, rule, cost, leaseId);
    this.storeLeases(table, key, slot, s.next, now);
    return Promise.resolve(combine(key, cost, [s.outcome]));
  }

  release(key: string, rule: ConcurrencyRule, leaseId: string): Promise<void> {
    const table = this.tables.get(rule.id);
    const slot = table?.find(key) ?? -1;
    if (table !== undefined && slot >= 0) {
      const now = toMicros(this.clock());
      this.storeLeases(table, key, slot, release(table.objs[slot] as readonly LeaseEntry[], now, leaseId), now);
    }
    return Promise.resolve();
  }

  private storeLeases(table: SlotTable<ObjectState>, key: string, slot: number, leases: readonly LeaseEntry[], now: number): void {
    if (leases.length === 0) {
      if (slot >= 0) table.delete(key);
      return;
    }
    const s = slot < 0 ? table.insert(key, now) : slot;
    table.objs[s] = leases;
    if (slot >= 0) table.use(s);
    // A loop, not Math.max(...spread): a key may hold more leases than a call can take arguments.
    let latest = 0;
    for (const l of leases) if (l.expires > latest) latest = l.expires;
    table.expire(s, latest);
  }

  /** Keys held across all rules (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const t of this.tables.values()) n += t.size;
    return n;
  }

  /** Live keys dropped because `maxKeys` was too small for the traffic, across all rules. */
  get evictedLive(): number {
    let n = 0;
    for (const t of this.tables.values()) n += t.evictedLive;
    return n;
  }

  close(): Promise<void> {
    // Empty the tables in place: limiters prepared on this store hold them, and must see the reset.
    for (const t of this.tables.values()) t.clear();
    return Promise.resolve();
  }
}
