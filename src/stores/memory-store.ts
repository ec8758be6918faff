import { acquire, release, type ConcurrencyRule, type LeaseEntry } from '../core/algorithms/concurrency.js';
import { fixedWindow, type FixedWindowState } from '../core/algorithms/fixed-window.js';
import { gcra } from '../core/algorithms/gcra.js';
import { slidingLog } from '../core/algorithms/sliding-log.js';
import { slidingWindow, type SlidingWindowState } from '../core/algorithms/sliding-window.js';
import type { Step } from '../core/algorithms/step.js';
import { systemClock, toMicros, type Clock } from '../core/clock.js';
import { combine, type Decision, type RuleOutcome } from '../core/decision.js';
import { SluiceConfigError } from '../core/errors.js';
import type { Rule } from '../core/rule.js';
import type { SyncStore } from '../core/store.js';
import { Generations } from './generations.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Time source, epoch ms. Default `Date.now`. */
  clock?: Clock;
  /**
   * Most keys held per rule (default 1 000 000). Beyond it, keys untouched the longest are
   * dropped (approximate LRU); a dropped key that was still limited starts fresh, so set this above
   * the number of keys active within one window.
   */
  maxKeys?: number;
}

type State = number | FixedWindowState | SlidingWindowState | readonly number[] | readonly LeaseEntry[] | undefined;

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

/**
 * The embedded default store: process-local, synchronous, bounded. Decisions are exact and atomic
 * within the process (JavaScript runs one decision at a time).
 */
export class MemoryStore implements SyncStore {
  private readonly clock: Clock;
  private readonly maxKeys: number;
  private readonly tables = new Map<string, Generations<State>>();

  constructor(options: MemoryStoreOptions = {}) {
    this.clock = options.clock ?? systemClock;
    const maxKeys = options.maxKeys ?? 1_000_000;
    if (!Number.isInteger(maxKeys) || maxKeys < 2) {
      throw new SluiceConfigError('maxKeys', `must be an integer >= 2, got ${String(maxKeys)}`);
    }
    this.maxKeys = maxKeys;
    if (typeof this.clock !== 'function') throw new SluiceConfigError('clock', 'must be a function returning epoch ms');
  }

  private table(id: string): Generations<State> {
    let t = this.tables.get(id);
    if (t === undefined) {
      t = new Generations<State>(this.maxKeys);
      this.tables.set(id, t);
    }
    return t;
  }

  decideSync(key: string, rules: readonly Rule[], cost: number, peek = false): Decision {
    const now = toMicros(this.clock());
    if (rules.length === 1) {
      const rule = rules[0] as Rule;
      const table = this.table(rule.id);
      const state = table.get(key);
      const s = step(rule, state, now, cost);
      if (peek) {
        // read-only
      } else if (s.next !== state) table.set(key, s.next);
      else if (state !== undefined && table.isOld(key)) table.set(key, state); // keep live state
      const o = s.outcome;
      return {
        key,
        cost,
        policy: o.policy,
        allowed: o.allowed,
        limit: o.limit,
        remaining: o.remaining,
        resetMs: o.resetMs,
        retryAfterMs: o.retryAfterMs,
        windowMs: o.windowMs,
        policies: [o],
      };
    }
    const tables = rules.map((r) => this.table(r.id));
    const states = tables.map((t) => t.get(key));
    const steps = rules.map((r, i) => step(r, states[i], now, cost));
    const all = steps.every((s) => s.outcome.allowed);
    let outcomes: RuleOutcome[];
    if (all) {
      if (!peek)
        steps.forEach((s, i) => {
        if (s.next !== states[i]) (tables[i] as Generations<State>).set(key, s.next);
      });
      outcomes = steps.map((s) => s.outcome);
    } else {
      // Nothing commits; report admitting rules as they stand (a peek), refusing ones as refused.
      outcomes = steps.map((s, i) => (s.outcome.allowed ? step(rules[i] as Rule, states[i], now, 0).outcome : s.outcome));
      tables.forEach((t, i) => {
        if (states[i] !== undefined && t.isOld(key)) t.set(key, states[i]);
      });
    }
    return combine(key, cost, outcomes);
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
    const table = this.table(rule.id);
    const s = acquire(table.get(key) as readonly LeaseEntry[] | undefined, toMicros(this.clock()), rule, cost, leaseId);
    table.set(key, s.next);
    return Promise.resolve(combine(key, cost, [s.outcome]));
  }

  release(key: string, rule: ConcurrencyRule, leaseId: string): Promise<void> {
    const table = this.tables.get(rule.id);
    if (table !== undefined) {
      const next = release(table.get(key) as readonly LeaseEntry[] | undefined, toMicros(this.clock()), leaseId);
      if (next.length === 0) table.delete(key);
      else table.set(key, next);
    }
    return Promise.resolve();
  }

  /** Keys held across all rules (an upper bound; for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const t of this.tables.values()) n += t.size;
    return n;
  }

  close(): Promise<void> {
    this.tables.clear();
    return Promise.resolve();
  }
}
