/**
 * The algorithm registry: every algorithm is one definition that rule compilation, the memory
 * store and the Redis store read, so each entry must be complete and consistent with itself.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AlgorithmDefinition } from '../../../src/core/algorithms/algorithm.js';
import { ALGORITHMS, ALGORITHM_OPTIONS, algorithmOf, findAlgorithm } from '../../../src/core/algorithms/registry.js';
import { SluiceConfigError } from '../../../src/core/errors.js';
import { compileRule, type Rule } from '../../../src/core/rule.js';
import { ruleOfAlgorithm, T0_US } from '../harness.js';

const all = ALGORITHMS as readonly unknown[] as readonly AlgorithmDefinition[];
/** The algorithms a limit can name (not the internal block). */
const selectable = all.filter((a) => a.internal !== true);

describe('the registry', () => {
  it('names and aliases are unique and each resolves to its algorithm; internal ones cannot be named in options', () => {
    const names = all.flatMap((a) => [a.name, ...a.aliases]);
    expect(new Set(names).size).toBe(names.length);
    expect([...ALGORITHM_OPTIONS].sort()).toEqual(selectable.flatMap((a) => [a.name, ...a.aliases]).sort());
    for (const a of selectable) for (const n of [a.name, ...a.aliases]) expect(findAlgorithm(n)).toBe(a);
    expect(findAlgorithm('leaky-bucket')).toBeUndefined();
    expect(findAlgorithm('block')).toBeUndefined();
    expect(() => compileRule({ algorithm: 'block' as Rule['algorithm'] as 'gcra', limit: 1, windowMs: 1000 })).toThrow(/unknown algorithm "block"/);
  });

  it('rule compilation accepts every registered name and resolves aliases to the canonical one', () => {
    for (const a of selectable) {
      for (const n of [a.name, ...a.aliases]) {
        const r = compileRule({ algorithm: n as 'gcra', limit: 3, windowMs: 1000 });
        expect(r.algorithm).toBe(a.name);
        expect(algorithmOf(r)).toBe(a);
      }
    }
  });

  it('rule compilation takes its bounds from the definition: maxLimit, and burst only where it applies', () => {
    for (const a of selectable) {
      const algorithm = a.name as 'gcra';
      expect(() => compileRule({ algorithm, limit: a.maxLimit, windowMs: 1000 })).not.toThrow();
      expect(() => compileRule({ algorithm, limit: a.maxLimit + 1, windowMs: 1000 })).toThrow(SluiceConfigError);
      const withBurst = () => compileRule({ algorithm, limit: 3, windowMs: 1000, burst: 5 });
      if (a.burst) expect(withBurst).not.toThrow();
      else expect(withBurst).toThrow(/burst/);
    }
  });

  it("each algorithm's Lua is its .lua file and registers itself under its name", () => {
    for (const a of all) {
      const file = new URL(`../../../src/core/algorithms/${a.name}/${a.name}.lua`, import.meta.url);
      expect(a.lua).toBe(readFileSync(file, 'utf8'));
      expect(a.lua).toContain(`ALGORITHMS['${a.name}'] = {`);
    }
  });
});

describe('state codecs round-trip every state the step produces', () => {
  for (const a of all) {
    it(`${a.name}: decode(encode(state)) == state, and deadAt is after every admitted moment`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 20 }),
          fc.array(fc.record({ dt: fc.integer({ min: 0, max: 1500_000 }), cost: fc.integer({ min: 0, max: 4 }) }), { maxLength: 30 }),
          (limit, ops) => {
            const rule = ruleOfAlgorithm(a, limit, 1000);
            let state: unknown;
            let now = T0_US;
            for (const op of ops) {
              now += op.dt;
              const s = a.step(state, now, rule, op.cost);
              if (s.outcome.allowed) state = s.next;
              if (state === undefined) continue;
              const stored = a.codec.encode(state);
              if (a.codec.redisType === 'string') expect(stored).toHaveLength(1);
              expect(a.codec.decode(stored)).toEqual(state);
              if (s.outcome.allowed && op.cost > 0) expect(a.deadAt(state, rule)).toBeGreaterThan(now);
            }
          },
        ),
      );
    });
  }
});
