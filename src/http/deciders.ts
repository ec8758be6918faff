/**
 * Store access for the engine: the memory store's prepared synchronous deciders when the store
 * offers them (no promise on the hot path), else the store's own `decide`.
 */
import type { Decision } from '../core/decision.js';
import type { Rule } from '../core/rule.js';
import { isSyncStore, type Decider, type Store } from '../core/store.js';
import type { DecideFn } from './failed-auth.js';

/** Decide synchronously (peek or consume `cost` units, default one). */
export type DecideNow = (key: string, rules: readonly Rule[], peek: boolean, cost?: number) => Decision;

/** How the engine asks its store. */
export interface Deciders {
  /** Always available; resolves at once on a synchronous store. */
  readonly decide: DecideFn;
  /** Only on a synchronous store. */
  readonly decideNow: DecideNow | undefined;
}

/** Most prepared multi-rule deciders kept (dynamic per-caller limits could otherwise grow it without bound). */
const MAX_PREPARED = 1000;

/** The deciders of `store`, with prepared deciders cached per rule set. */
export function createDeciders(store: Store): Deciders {
  if (!isSyncStore(store)) return { decide: (key, rules, cost, peek) => store.decide(key, rules, cost, peek), decideNow: undefined };
  const sync = store;
  const single = new WeakMap<Rule, Decider>();
  const multi = new Map<string, Decider>();
  const ruleIds = new WeakMap<Rule, number>();
  let nextRuleId = 0;
  const idOf = (r: Rule) => {
    let id = ruleIds.get(r);
    if (id === undefined) ruleIds.set(r, (id = nextRuleId++));
    return id;
  };
  const deciderFor = (rules: readonly Rule[]): Decider => {
    if (rules.length === 1) {
      const r = rules[0] as Rule;
      let d = single.get(r);
      if (d === undefined) single.set(r, (d = sync.prepare(rules)));
      return d;
    }
    const sig = rules.map(idOf).join(',');
    let d = multi.get(sig);
    if (d === undefined) {
      if (multi.size >= MAX_PREPARED) multi.clear();
      multi.set(sig, (d = sync.prepare(rules)));
    }
    return d;
  };
  return {
    decide: (key, rules, cost, peek) => {
      try {
        return Promise.resolve(deciderFor(rules)(key, cost, peek));
      } catch (err) {
        return Promise.reject(err);
      }
    },
    decideNow: (key, rules, peek, cost = 1) => deciderFor(rules)(key, cost, peek),
  };
}
