/**
 * Property tests (fast-check): for random sequences of (time step, cost), no algorithm ever admits
 * more than its documented bound (TSDoc of `Algorithm` in src/core/rule.ts), every refusal's
 * retry-after is truthful, `remaining` is truthful, and several limits commit all or nothing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { acquire, compileConcurrencyRule, type LeaseEntry } from '../../src/core/algorithms/concurrency/index.js';
import { fixedWindow } from '../../src/core/algorithms/fixed-window/index.js';
import { gcra } from '../../src/core/algorithms/gcra/index.js';
import { quota } from '../../src/core/algorithms/quota/index.js';
import { slidingLog } from '../../src/core/algorithms/sliding-log/index.js';
import { slidingWindow } from '../../src/core/algorithms/sliding-window/index.js';
import type { Step } from '../../src/core/algorithms/step.js';
import type { RuleOutcome } from '../../src/core/decision.js';
import { compileRule, MAX_WINDOW_MS, type Rule } from '../../src/core/rule.js';
import { createLimiter } from '../../src/index.js';
import { microClock, T0_US, us } from './harness.js';

/** The counting algorithms (the internal block has its own specs: test/core/algorithms/block.test.ts). */
type Algo = Exclude<Rule['algorithm'], 'block'>;
type StepFn = (state: unknown, now: number, rule: Rule, cost: number) => Step<unknown>;
const STEP: Record<Algo, StepFn> = {
  gcra: gcra as StepFn,
  'fixed-window': fixedWindow as StepFn,
  'sliding-window': slidingWindow as StepFn,
  'sliding-log': slidingLog as StepFn,
  quota: quota as StepFn,
};
const ALGOS: Algo[] = ['gcra', 'fixed-window', 'sliding-window', 'sliding-log', 'quota'];

const RUNS = Number(process.env.SLUICE_PROPERTY_RUNS ?? 150);

/**
 * A rule of `algo`. Small numbers (the default) make windows fill and roll over within a run;
 * `large` reaches big limits and windows up to 10 years, where rounding would show.
 */
const ruleArb = (algo: Algo, name = 'r', large = false) =>
  fc
    .record({
      limit: large ? fc.integer({ min: 1, max: 10_000 }) : fc.integer({ min: 1, max: 12 }),
      windowMs: large
        ? fc.constantFrom(1, 7, 1000, 86_400_000, MAX_WINDOW_MS / 4, MAX_WINDOW_MS)
        : fc.constantFrom(1, 3, 10, 250, 1000),
      burstFactor: fc.double({ min: 0, max: large ? 3 : 1.5, noNaN: true }),
    })
    .map(({ limit, windowMs, burstFactor }) => {
      const burst = Math.max(1, Math.round(limit * burstFactor));
      return compileRule({ name, algorithm: algo, limit, windowMs, ...(algo === 'gcra' ? { burst } : {}) });
    });

/** A time step in µs, scaled to the rule: often 0 or tiny, sometimes a fraction of W, sometimes more. */
const stepArb = (r: Rule) =>
  fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: 3 }),
    fc.integer({ min: 0, max: Math.max(1, Math.floor(r.windowUs / r.limit)) }),
    fc.integer({ min: 0, max: 2 * r.windowUs }),
  );

/** Cost: mostly 1, sometimes 0 or more, occasionally above the limit. */
const costArb = (r: Rule) =>
  fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: r.burst + 1 }) });

const scenarioArb = (algo: Algo, large = false) =>
  ruleArb(algo, 'r', large).chain((r) =>
    fc.record({
      rule: fc.constant(r),
      start: fc.integer({ min: 0, max: r.windowUs }),
      ops: fc.array(fc.tuple(stepArb(r), costArb(r)), { minLength: 1, maxLength: 120 }),
    }),
  );

interface Admitted {
  t: number;
  cost: number;
}

/** Replay `ops` through one algorithm, committing only admitted steps; check each outcome's shape. */
function replay(
  algo: Algo,
  r: Rule,
  start: number,
  ops: readonly (readonly [number, number])[],
  onStep?: (state: unknown, now: number, cost: number, o: RuleOutcome) => void,
): Admitted[] {
  const step = STEP[algo];
  let state: unknown;
  let now = T0_US + start;
  const admitted: Admitted[] = [];
  for (const [dt, cost] of ops) {
    now += dt;
    const s = step(state, now, r, cost);
    const o = s.outcome;
    wellFormed(o, r, cost);
    onStep?.(state, now, cost, o);
    if (o.allowed) {
      state = s.next;
      if (cost > 0) admitted.push({ t: now, cost });
    }
  }
  return admitted;
}

function wellFormed(o: RuleOutcome, r: Rule, cost: number): void {
  expect(Number.isInteger(o.remaining)).toBe(true);
  expect(o.remaining).toBeGreaterThanOrEqual(0);
  expect(o.remaining).toBeLessThanOrEqual(o.limit);
  expect(o.limit).toBe(r.burst);
  expect(o.resetMs).toBeGreaterThanOrEqual(0);
  expect(Number.isFinite(o.resetMs)).toBe(true);
  if (o.allowed) {
    expect(o.retryAfterMs).toBe(0);
  } else {
    expect(o.retryAfterMs).toBeGreaterThan(0);
    expect(Number.isFinite(o.retryAfterMs)).toBe(cost <= r.burst);
  }
}

const sumIn = (admitted: readonly Admitted[], from: number, to: number) =>
  admitted.reduce((n, a) => (a.t >= from && a.t < to ? n + a.cost : n), 0);

for (const [label, large, runs] of [
  ['small numbers', false, RUNS],
  ['large limits and windows', true, Math.ceil(RUNS / 3)],
] as const) {
  describe(`bounds (${label}): no sequence admits more than the documented bound`, () => {
    it('sliding-log: at most `limit` in ANY interval of length W', () => {
      fc.assert(
        fc.property(scenarioArb('sliding-log', large), ({ rule, start, ops }) => {
          const admitted = replay('sliding-log', rule, start, ops);
          // The busiest interval of length W can be taken to start at an admission.
          for (const a of admitted) expect(sumIn(admitted, a.t, a.t + rule.windowUs)).toBeLessThanOrEqual(rule.limit);
        }),
        { numRuns: runs },
      );
    });

    for (const algo of ['fixed-window', 'sliding-window'] as const) {
      it(`${algo}: at most \`limit\` in each clock-aligned window`, () => {
        fc.assert(
          fc.property(scenarioArb(algo, large), ({ rule, start, ops }) => {
            const admitted = replay(algo, rule, start, ops);
            const perWindow = new Map<number, number>();
            for (const a of admitted) {
              const w = Math.floor(a.t / rule.windowUs);
              perWindow.set(w, (perWindow.get(w) ?? 0) + a.cost);
            }
            for (const n of perWindow.values()) expect(n).toBeLessThanOrEqual(rule.limit);
          }),
          { numRuns: runs },
        );
      });
    }

    it('quota (first-api-call): at most `limit` in each period counted from the first admitted call', () => {
      fc.assert(
        fc.property(scenarioArb('quota', large), ({ rule, start, ops }) => {
          const admitted = replay('quota', rule, start, ops);
          if (admitted.length === 0) return;
          const anchor = Math.floor((admitted[0] as Admitted).t / 1000) * 1000;
          const perPeriod = new Map<number, number>();
          for (const a of admitted) {
            const k = Math.floor((a.t - anchor) / rule.windowUs);
            perPeriod.set(k, (perPeriod.get(k) ?? 0) + a.cost);
          }
          for (const n of perPeriod.values()) expect(n).toBeLessThanOrEqual(rule.limit);
        }),
        { numRuns: runs },
      );
    });

    it('sliding-window: under 2 * limit in any interval of length W', () => {
      fc.assert(
        fc.property(scenarioArb('sliding-window', large), ({ rule, start, ops }) => {
          const admitted = replay('sliding-window', rule, start, ops);
          for (const a of admitted) expect(sumIn(admitted, a.t, a.t + rule.windowUs)).toBeLessThan(2 * rule.limit);
        }),
        { numRuns: runs },
      );
    });

    it('gcra: at most burst + t * limit / W in any interval of length t', () => {
      fc.assert(
        fc.property(scenarioArb('gcra', large), ({ rule, start, ops }) => {
          const admitted = replay('gcra', rule, start, ops);
          for (let i = 0; i < admitted.length; i++) {
            let n = 0;
            for (let j = i; j < admitted.length; j++) {
              n += (admitted[j] as Admitted).cost;
              const t = (admitted[j] as Admitted).t - (admitted[i] as Admitted).t;
              // n <= burst + t * limit / W, in integers.
              expect(n * rule.windowUs).toBeLessThanOrEqual(rule.burst * rule.windowUs + t * rule.limit);
            }
          }
        }),
        { numRuns: runs },
      );
    });
  });

  describe(`truthfulness (${label})`, () => {
    for (const algo of ALGOS) {
      it(`${algo}: a refused request of the same cost passes at now + retryAfter, and not 1 µs sooner`, () => {
        fc.assert(
          fc.property(scenarioArb(algo, large), ({ rule, start, ops }) => {
            const step = STEP[algo];
            replay(algo, rule, start, ops, (state, now, cost, o) => {
              if (o.allowed || o.retryAfterMs === Infinity) return;
              const at = now + us(o.retryAfterMs);
              expect(step(state, at, rule, cost).outcome.allowed).toBe(true);
              expect(step(state, at - 1, rule, cost).outcome.allowed).toBe(false);
            });
          }),
          { numRuns: runs },
        );
      });

      it(`${algo}: \`remaining\` more units pass at the same instant, and not one more`, () => {
        fc.assert(
          fc.property(scenarioArb(algo, large), ({ rule, start, ops }) => {
            const step = STEP[algo];
            replay(algo, rule, start, ops, (state, now, cost, o) => {
              const after = o.allowed ? step(state, now, rule, cost).next : state;
              if (o.remaining > 0) expect(step(after, now, rule, o.remaining).outcome.allowed).toBe(true);
              expect(step(after, now, rule, o.remaining + 1).outcome.allowed).toBe(false);
            });
          }),
          { numRuns: runs },
        );
      });
    }


  });
}

describe('concurrency', () => {
  it('concurrency: at most `limit` held at once, and retry-after is when enough leases have expired', () => {
    const opArb = fc.tuple(fc.integer({ min: 0, max: 400_000 }), fc.integer({ min: 0, max: 5 }), fc.boolean());
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(opArb, { minLength: 1, maxLength: 100 }), (limit, ops) => {
        const rule = compileConcurrencyRule({ limit, leaseMs: 1000 });
        let leases: readonly LeaseEntry[] | undefined;
        let now = T0_US;
        let n = 0;
        for (const [dt, cost, releaseOldest] of ops) {
          now += dt;
          if (releaseOldest && leases !== undefined && leases.length > 0) leases = leases.slice(1);
          const s = acquire(leases, now, rule, cost, `l${n++}`);
          const held = s.next.reduce((h, l) => (l.expires > now ? h + l.cost : h), 0);
          expect(held).toBeLessThanOrEqual(limit);
          const o = s.outcome;
          if (!o.allowed && o.retryAfterMs !== Infinity) {
            const at = now + us(o.retryAfterMs);
            expect(acquire(leases, at, rule, cost, 'x').outcome.allowed).toBe(true);
            expect(acquire(leases, at - 1, rule, cost, 'x').outcome.allowed).toBe(false);
          }
          leases = s.next;
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('a clock that steps backwards', () => {
  for (const algo of ALGOS) {
    it(`${algo}: never crashes and admits no more than the bound over the span of times seen`, () => {
      const arb = ruleArb(algo).chain((r) =>
        fc.record({
          rule: fc.constant(r),
          ops: fc.array(
            fc.tuple(fc.integer({ min: -2 * r.windowUs, max: 2 * r.windowUs }), costArb(r)),
            { minLength: 1, maxLength: 120 },
          ),
        }),
      );
      fc.assert(
        fc.property(arb, ({ rule, ops }) => {
          const step = STEP[algo];
          let state: unknown;
          let now = T0_US;
          let lo = now;
          let hi = now;
          let total = 0;
          for (const [dt, cost] of ops) {
            now += dt;
            lo = Math.min(lo, now);
            hi = Math.max(hi, now);
            const s = step(state, now, rule, cost);
            wellFormed(s.outcome, rule, cost);
            if (s.outcome.allowed) {
              state = s.next;
              total += cost;
            }
          }
          const W = rule.windowUs;
          const span = hi - lo;
          if (algo === 'gcra') expect(total * W).toBeLessThanOrEqual(rule.burst * W + span * rule.limit);
          else expect(total).toBeLessThanOrEqual(rule.limit * (Math.floor(hi / W) - Math.floor(lo / W) + 1));
        }),
        { numRuns: RUNS },
      );
    });
  }
});

describe('several limits: all or nothing', () => {
  const setArb = fc
    .uniqueArray(fc.constantFrom(...ALGOS), { minLength: 2, maxLength: 4 })
    .chain((algos) => fc.tuple(...algos.map((a, i) => ruleArb(a, `rule${i}`))))
    .chain((rules) =>
      fc.record({
        rules: fc.constant(rules),
        ops: fc.array(fc.tuple(stepArb(rules[0] as Rule), fc.integer({ min: 0, max: 6 })), { minLength: 1, maxLength: 100 }),
      }),
    );

  it('the limiter admits iff every rule admits, commits to all or none, and names the deciding rule', () => {
    fc.assert(
      fc.property(setArb, ({ rules, ops }) => {
        const clock = microClock();
        const limiter = createLimiter({
          clock,
          limits: rules.map((r) => ({
            name: r.name,
            algorithm: r.algorithm as Algo,
            limit: r.limit,
            windowMs: r.windowMs,
            ...(r.algorithm === 'gcra' ? { burst: r.burst } : {}),
          })),
        });
        // A shadow state per rule, fed only what the limiter says it admitted.
        const shadow: unknown[] = rules.map(() => undefined);
        for (const [dt, cost] of ops) {
          clock.advanceUs(dt);
          const now = clock.us();
          const steps = rules.map((r, i) => STEP[r.algorithm as Algo](shadow[i], now, r, cost));
          const all = steps.every((s) => s.outcome.allowed);
          const d = limiter.consumeSync('k', cost);
          expect(d.allowed).toBe(all);
          expect(d.policies.map((p) => p.policy)).toEqual(rules.map((r) => r.name));
          steps.forEach((s, i) => {
            const expected = all || !s.outcome.allowed ? s.outcome : STEP[rules[i]!.algorithm as Algo](shadow[i], now, rules[i]!, 0).outcome;
            expect(d.policies[i]).toEqual(expected);
          });
          if (all) {
            steps.forEach((s, i) => (shadow[i] = s.next));
            expect(Math.min(...d.policies.map((p) => p.remaining))).toBe(d.remaining);
          } else {
            const refusing = d.policies.filter((p) => !p.allowed);
            expect(refusing.map((p) => p.policy)).toContain(d.policy);
            expect(d.retryAfterMs).toBe(Math.max(...refusing.map((p) => p.retryAfterMs)));
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('a refused multi-limit request is truthful: it passes at now + retryAfter', () => {
    fc.assert(
      fc.property(setArb, ({ rules, ops }) => {
        const clock = microClock();
        const limits = rules.map((r) => ({
          name: r.name,
          algorithm: r.algorithm as Algo,
          limit: r.limit,
          windowMs: r.windowMs,
          ...(r.algorithm === 'gcra' ? { burst: r.burst } : {}),
        }));
        const limiter = createLimiter({ clock, limits });
        for (const [dt, cost] of ops) {
          clock.advanceUs(dt);
          const d = limiter.consumeSync('k', cost);
          if (d.allowed || d.retryAfterMs === Infinity) continue;
          const now = clock.us();
          clock.advanceUs(us(d.retryAfterMs) - 1);
          expect(limiter.consumeSync('k', cost).allowed).toBe(false);
          clock.advanceUs(1);
          expect(limiter.consumeSync('k', cost).allowed).toBe(true);
          expect(clock.us()).toBe(now + us(d.retryAfterMs));
        }
      }),
      { numRuns: RUNS },
    );
  });
});
