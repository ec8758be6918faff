/**
 * Shared helpers for the core specs: a clock driven in whole microseconds (so every step the
 * tests take is exact), and a replay of pure algorithm steps.
 */
import type { Step } from '../../src/core/algorithms/step.js';
import { toMicros, type ManualClock } from '../../src/core/clock.js';
import { blockRule } from '../../src/core/algorithms/block/index.js';
import { compileRule, type LimitOptions, type Rule } from '../../src/core/rule.js';

/** 2026-01-01T00:00:00Z in µs: a multiple of every whole-second window. */
export const T0_US = Date.UTC(2026, 0, 1) * 1000;

/** A manual clock steered in integer µs; `us()` is what the stores see. */
export interface MicroClock extends ManualClock {
  us(): number;
  advanceUs(us: number): void;
  setUs(us: number): void;
}

export function microClock(startUs = T0_US): MicroClock {
  let now = startUs;
  const clock = (() => now / 1000) as MicroClock;
  clock.us = () => now;
  clock.advanceUs = (d) => {
    now += d;
  };
  clock.setUs = (u) => {
    now = u;
  };
  clock.advance = (ms) => {
    now += Math.round(ms * 1000);
  };
  clock.set = (ms) => {
    now = Math.round(ms * 1000);
  };
  // The property the whole harness relies on: an integer µs count survives the trip through ms.
  if (toMicros(clock()) !== now) throw new Error('microClock: µs not exact through toMicros');
  return clock;
}

/** Milliseconds → whole µs (outcome durations are µs / 1000). */
export const us = (ms: number): number => Math.round(ms * 1000);

export function rule(options: Partial<LimitOptions> & { limit: number; windowMs: number }): Rule {
  return compileRule(options as LimitOptions);
}

/** A pure algorithm bound to a mutable state, committing like a store (only when admitted). */
export function runner<S>(
  algo: (state: S | undefined, now: number, rule: Rule, cost: number) => Step<S | undefined>,
  r: Rule,
) {
  let state: S | undefined;
  return {
    get state() {
      return state;
    },
    set state(s: S | undefined) {
      state = s;
    },
    at(now: number, cost = 1) {
      const s = algo(state, now, r, cost);
      if (s.outcome.allowed) state = s.next;
      return s.outcome;
    },
    /** Decide without committing (what a peek sees). */
    peek(now: number, cost = 1) {
      return algo(state, now, r, cost).outcome;
    },
  };
}

/**
 * A rule of any registered algorithm for the registry-wide specs: `compileRule` for the counting
 * algorithms; for the internal block, a block of `windowMs` escalating by a multiplier chosen
 * from `limit` (whole and fractional) up to `limit` first blocks, forgotten after two.
 */
export function ruleOfAlgorithm(a: { readonly name: string; readonly internal?: boolean }, limit: number, windowMs: number): Rule {
  if (a.internal === true) {
    const multiplier = [1, 1.5, 2, 3, 1.1][limit % 5] as number;
    return blockRule({ name: 'r', blockMs: windowMs, multiplier, maxBlockMs: windowMs * limit, resetMs: windowMs * 2 });
  }
  return compileRule({ algorithm: a.name as LimitOptions['algorithm'], limit, windowMs });
}
