/**
 * Charges (AlgorithmDefinition.charge): units forced in after admission, past the limit if need
 * be. Property tests over random sequences of admissions, charges and time steps: an admission
 * never happens while the units counted (admitted and charged) would exceed the algorithm's
 * bound, so admissions never exceed the limit beyond the charged overdraft; every refusal waits
 * exactly until the request fits (not 1 µs sooner); `remaining` is truthful and never negative.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AlgorithmDefinition } from '../../src/core/algorithms/algorithm.js';
import { gcraCharge, MAX_CHARGE_AHEAD_US } from '../../src/core/algorithms/gcra/step.js';
import { findAlgorithm } from '../../src/core/algorithms/registry.js';
import { slidingLogCharge } from '../../src/core/algorithms/sliding-log/index.js';
import type { RuleOutcome } from '../../src/core/decision.js';
import { compileRule, MAX_WINDOW_MS, type Rule } from '../../src/core/rule.js';
import { T0_US, us } from './harness.js';

type Algo = Exclude<Rule['algorithm'], 'block'>;
const ALGOS: Algo[] = ['gcra', 'fixed-window', 'sliding-window', 'sliding-log', 'quota'];
const RUNS = Number(process.env.SLUICE_PROPERTY_RUNS ?? 150);
const def = (a: Algo) => findAlgorithm(a) as AlgorithmDefinition;

const ruleArb = (algo: Algo) =>
  fc
    .record({ limit: fc.integer({ min: 1, max: 12 }), windowMs: fc.constantFrom(1, 3, 10, 250, 1000), burstFactor: fc.double({ min: 0, max: 1.5, noNaN: true }) })
    .map(({ limit, windowMs, burstFactor }) =>
      compileRule({ algorithm: algo, limit, windowMs, ...(algo === 'gcra' ? { burst: Math.max(1, Math.round(limit * burstFactor)) } : {}) }),
    );

/** One event: a time step (µs), then an admission attempt (`consume`) or a charge of `cost`. */
type Op = readonly [dt: number, kind: 'consume' | 'charge', cost: number];

const scenarioArb = (algo: Algo) =>
  ruleArb(algo).chain((r) =>
    fc.record({
      rule: fc.constant(r),
      start: fc.integer({ min: 0, max: r.windowUs }),
      ops: fc.array(
        fc.tuple(
          fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: Math.max(1, Math.floor(r.windowUs / r.limit)) }), fc.integer({ min: 0, max: 2 * r.windowUs })),
          fc.constantFrom('consume' as const, 'consume' as const, 'charge' as const),
          // Charges up to 4x the limit: overdrafts deep enough to last several windows.
          fc.oneof({ weight: 3, arbitrary: fc.constant(1) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: 4 * r.burst + 1 }) }),
        ),
        { minLength: 1, maxLength: 120 },
      ),
    }),
  );

interface Unit {
  t: number;
  cost: number;
  admitted: boolean;
}

/**
 * Replay `ops`: admissions commit when admitted, charges always. `onStep` sees every admission
 * attempt (state before it). Returns every unit counted, admitted or charged, in order.
 */
function replay(algo: Algo, r: Rule, start: number, ops: readonly Op[], onStep?: (state: unknown, now: number, cost: number, o: RuleOutcome) => void): Unit[] {
  const a = def(algo);
  let state: unknown;
  let now = T0_US + start;
  const units: Unit[] = [];
  for (const [dt, kind, cost] of ops) {
    now += dt;
    if (kind === 'charge') {
      if (cost > 0) {
        state = a.charge(state, now, r, cost);
        units.push({ t: now, cost, admitted: false });
      }
      continue;
    }
    const s = a.step(state, now, r, cost);
    const o = s.outcome;
    expect(Number.isInteger(o.remaining)).toBe(true);
    expect(o.remaining).toBeGreaterThanOrEqual(0);
    expect(o.remaining).toBeLessThanOrEqual(o.limit);
    expect(Number.isFinite(o.resetMs) && o.resetMs >= 0).toBe(true);
    if (!o.allowed) expect(o.retryAfterMs).toBeGreaterThan(0);
    onStep?.(state, now, cost, o);
    if (o.allowed) {
      state = s.next;
      if (cost > 0) units.push({ t: now, cost, admitted: true });
    }
  }
  return units;
}

const sum = (units: readonly Unit[], keep: (u: Unit) => boolean) => units.reduce((n, u) => (keep(u) ? n + u.cost : n), 0);

describe('after charges, no admission exceeds the bound counting charged units', () => {
  it('sliding-log: at an admission, the units of the last W (admitted and charged, itself included) are at most `limit`', () => {
    fc.assert(
      fc.property(scenarioArb('sliding-log'), ({ rule, start, ops }) => {
        const units = replay('sliding-log', rule, start, ops);
        units.forEach((a, i) => {
          if (!a.admitted) return;
          const before = units.slice(0, i + 1);
          expect(sum(before, (u) => u.t > a.t - rule.windowUs)).toBeLessThanOrEqual(rule.limit);
        });
      }),
      { numRuns: RUNS },
    );
  });

  for (const algo of ['fixed-window', 'sliding-window'] as const) {
    it(`${algo}: at an admission, the units of its clock-aligned window so far are at most \`limit\``, () => {
      fc.assert(
        fc.property(scenarioArb(algo), ({ rule, start, ops }) => {
          const units = replay(algo, rule, start, ops);
          const W = rule.windowUs;
          units.forEach((a, i) => {
            if (!a.admitted) return;
            const w = Math.floor(a.t / W);
            expect(sum(units.slice(0, i + 1), (u) => Math.floor(u.t / W) === w)).toBeLessThanOrEqual(rule.limit);
          });
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('quota (first-api-call): at an admission, the units of its period so far are at most `limit`', () => {
    fc.assert(
      fc.property(scenarioArb('quota'), ({ rule, start, ops }) => {
        const units = replay('quota', rule, start, ops);
        if (units.length === 0) return;
        const anchor = Math.floor((units[0] as Unit).t / 1000) * 1000;
        const period = (t: number) => Math.floor((t - anchor) / rule.windowUs);
        units.forEach((a, i) => {
          if (!a.admitted) return;
          expect(sum(units.slice(0, i + 1), (u) => period(u.t) === period(a.t))).toBeLessThanOrEqual(rule.limit);
        });
      }),
      { numRuns: RUNS },
    );
  });

  it('gcra: at an admission at t, the units since any s <= t (charged ones included) are at most burst + (t - s) / T', () => {
    fc.assert(
      fc.property(scenarioArb('gcra'), ({ rule, start, ops }) => {
        const units = replay('gcra', rule, start, ops);
        units.forEach((a, i) => {
          if (!a.admitted) return;
          let n = 0;
          for (let j = i; j >= 0; j--) {
            const u = units[j] as Unit;
            n += u.cost;
            expect(n * rule.intervalUs).toBeLessThanOrEqual(rule.tauUs + (a.t - u.t));
          }
        });
      }),
      { numRuns: RUNS },
    );
  });
});

describe('while overdrawn, waits and remaining are exact', () => {
  for (const algo of ALGOS) {
    it(`${algo}: a refused request passes at now + retryAfter, not 1 µs sooner; \`remaining\` units pass and not one more`, () => {
      const a = def(algo);
      fc.assert(
        fc.property(scenarioArb(algo), ({ rule, start, ops }) => {
          replay(algo, rule, start, ops, (state, now, cost, o) => {
            if (!o.allowed && o.retryAfterMs !== Infinity) {
              const at = now + us(o.retryAfterMs);
              expect(a.step(state, at, rule, cost).outcome.allowed).toBe(true);
              expect(a.step(state, at - 1, rule, cost).outcome.allowed).toBe(false);
            }
            const after = o.allowed ? a.step(state, now, rule, cost).next : state;
            if (o.remaining > 0) expect(a.step(after, now, rule, o.remaining).outcome.allowed).toBe(true);
            expect(a.step(after, now, rule, o.remaining + 1).outcome.allowed).toBe(false);
          });
        }),
        { numRuns: RUNS },
      );
    });
  }
});

describe('charge, by algorithm', () => {
  it('gcra: TAT = max(TAT, now) + cost * T, uncapped', () => {
    const r = compileRule({ limit: 10, windowMs: 1000 });
    expect(gcraCharge(undefined, T0_US, r, 3)).toBe(T0_US + 300_000);
    expect(gcraCharge(T0_US - 5, T0_US, r, 1)).toBe(T0_US + 100_000);
    expect(gcraCharge(T0_US + 5_000_000, T0_US, r, 100)).toBe(T0_US + 15_000_000);
  });

  it('gcra: an absurd charge moves the TAT at most MAX_CHARGE_AHEAD_US past now, and never back', () => {
    const r = compileRule({ limit: 1, windowMs: MAX_WINDOW_MS });
    expect(gcraCharge(undefined, T0_US, r, Number.MAX_SAFE_INTEGER)).toBe(T0_US + MAX_CHARGE_AHEAD_US);
    expect(gcraCharge(T0_US + 3e15, T0_US, r, 5)).toBe(T0_US + 3e15);
  });

  it('window algorithms count the charge in the window an admission would use, past the limit', () => {
    const r = (algorithm: Algo) => compileRule({ algorithm, limit: 2, windowMs: 1000 });
    expect(def('fixed-window').charge({ start: T0_US, count: 2 }, T0_US + 10, r('fixed-window'), 5)).toEqual({ start: T0_US, count: 7 });
    expect(def('fixed-window').charge({ start: T0_US, count: 2 }, T0_US + 1_000_000, r('fixed-window'), 5)).toEqual({ start: T0_US + 1_000_000, count: 5 });
    expect(def('sliding-window').charge({ start: T0_US, prev: 1, curr: 2 }, T0_US + 1_500_000, r('sliding-window'), 4)).toEqual({ start: T0_US + 1_000_000, prev: 2, curr: 4 });
  });

  it('sliding-log keeps the newest limit + 1 units, stamped no earlier than the newest entry', () => {
    const r = compileRule({ algorithm: 'sliding-log', limit: 3, windowMs: 1000 });
    expect(slidingLogCharge([T0_US - 2_000_000, T0_US - 10], T0_US, r, 2)).toEqual([T0_US - 10, T0_US, T0_US]);
    expect(slidingLogCharge([T0_US - 10], T0_US, r, 1e9)).toEqual([T0_US, T0_US, T0_US, T0_US]);
    expect(slidingLogCharge([T0_US + 50], T0_US, r, 1)).toEqual([T0_US + 50, T0_US + 50]);
  });
});
