import { acquire, release, type ConcurrencyRule, type LeaseEntry } from '../core/algorithms/concurrency.js';
import { fixedWindow, type FixedWindowState } from '../core/algorithms/fixed-window.js';
import { gcra } from '../core/algorithms/gcra.js';
import { slidingLog } from '../core/algorithms/sliding-log.js';
import { slidingWindow, type SlidingWindowState } from '../core/algorithms/sliding-window.js';
import type { Step } from '../core/algorithms/step.js';
import { systemClock, toMicros, type Clock } from '../core/clock.js';
import { combine, singleDecision, type Decision } from '../core/decision.js';
import { SluiceConfigError } from '../core/errors.js';
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
 * costs 184-201 B, so the bound is conservative for short keys.
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

type ObjectState = FixedWindowState | SlidingWindowState | readonly number[] | readonly LeaseEntry[];
type State = number | ObjectState | undefined;

/** Run one rule's algorithm on its state. */
function step(rule: Rule, state: State, now: number, cost: number): Step<State> {
  switch (rule.algorithm) {
    case 'gcra':
      return gcra(state as number | undefined, now, rule, cost);
    case 'fixed-window':
      return fixedWindow(state as FixedWindowState | undefined, now, rule, cost);
    case 'sliding-window':
      return slidingWindow(state as SlidingWindowState | undefined, now, rule, cost);
    case 'sliding-log':
      return slidingLog(state as readonly number[] | undefined, now, rule, cost);
  }
}

/** When a rule's state stops mattering (µs): after that the key is as good as absent. */
function deadAt(rule: Rule, state: State): number {
  if (state === undefined) return 0;
  switch (rule.algorithm) {
    case 'gcra':
      return state as number;
    case 'fixed-window':
      return (state as FixedWindowState).start + rule.windowUs;
    case 'sliding-window':
      return (state as SlidingWindowState).start + 2 * rule.windowUs;
    case 'sliding-log': {
      const log = state as readonly number[];
      return log.length === 0 ? 0 : (log[log.length - 1] as number) + rule.windowUs;
    }
  }
}

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
      t = new SlotTable<ObjectState>(this.maxKeys, 'algorithm' in rule && rule.algorithm === 'gcra');
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
    if (rules.length === 1 && first !== undefined && first.algorithm === 'gcra') {
      const rule = first;
      const table = this.table(rule);
      const clock = this.clock;
      // The GCRA fast path: one Map lookup, a typed-array write, one allocation.
      return (key, cost, peek) => {
        const now = toMicros(clock());
        let slot = table.find(key);
        const s = gcra(slot < 0 ? undefined : table.nums[slot], now, rule, cost);
        if (slot >= 0) table.use(slot);
        if (s.outcome.allowed && cost > 0 && !peek) {
          if (slot < 0) slot = table.insert(key, now);
          table.nums[slot] = s.next as number;
        }
        return singleDecision(key, cost, s.outcome);
      };
    }
    const tables = rules.map((r) => this.table(r));
    return (key, cost, peek) => this.decideWith(tables, rules, key, cost, peek);
  }

  private read(table: SlotTable<ObjectState>, rule: Rule, slot: number): State {
    if (slot < 0) return undefined;
    return rule.algorithm === 'gcra' ? table.nums[slot] : table.objs[slot];
  }

  private write(table: SlotTable<ObjectState>, rule: Rule, key: string, slot: number, next: State, now: number): void {
    const s = slot < 0 ? table.insert(key, now) : slot;
    if (rule.algorithm === 'gcra') table.nums[s] = next as number;
    else table.objs[s] = next as ObjectState;
    // A new key is inserted cold (see SlotTable): only a repeat use marks it.
    if (slot < 0) table.expire(s, deadAt(rule, next));
    else table.touch(s, deadAt(rule, next));
  }

  private decideWith(
    tables: readonly SlotTable<ObjectState>[],
    rules: readonly Rule[],
    key: string,
    cost: number,
    peek: boolean,
  ): Decision {
    const now = toMicros(this.clock());
    const slots = tables.map((t) => t.find(key));
    const states = rules.map((r, i) => this.read(tables[i] as SlotTable<ObjectState>, r, slots[i] as number));
    const steps = rules.map((r, i) => step(r, states[i], now, cost));
    const all = steps.every((s) => s.outcome.allowed);
    if (all && !peek) {
      steps.forEach((s, i) => {
        const slot = slots[i] as number;
        const table = tables[i] as SlotTable<ObjectState>;
        if (s.next !== states[i]) this.write(table, rules[i] as Rule, key, slot, s.next, now);
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
      : steps.map((s, i) => (s.outcome.allowed ? step(rules[i] as Rule, states[i], now, 0).outcome : s.outcome));
    return combine(key, cost, outcomes);
  }

  decideSync(key: string, rules: readonly Rule[], cost: number, peek = false): Decision {
    return this.decideWith(
      rules.map((r) => this.table(r)),
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
