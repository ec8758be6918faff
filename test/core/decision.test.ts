/**
 * `combine`: one decision from every rule's outcome. Refused: the refusing rule that makes the
 * client wait longest decides. Admitted: the rule with the fewest remaining units describes it.
 */
import { describe, expect, it } from 'vitest';
import { combine, ruleOutcome, singleDecision, type RuleOutcome } from '../../src/core/decision.js';

const outcome = (o: Partial<RuleOutcome> & { policy: string }): RuleOutcome => ({
  allowed: true,
  limit: 10,
  remaining: 5,
  resetMs: 100,
  retryAfterMs: 0,
  windowMs: 1000,
  ...o,
});

describe('combine', () => {
  it('a single outcome is copied, with key, cost and policies', () => {
    const o = outcome({ policy: 'only', remaining: 3 });
    expect(combine('k', 2, [o])).toEqual({ ...o, key: 'k', cost: 2, policies: [o] });
  });

  it('admitted: the rule with the fewest remaining units decides', () => {
    const a = outcome({ policy: 'per-second', remaining: 7, limit: 10, windowMs: 1000, resetMs: 300 });
    const b = outcome({ policy: 'per-hour', remaining: 2, limit: 1000, windowMs: 3_600_000, resetMs: 9000 });
    const d = combine('k', 1, [a, b]);
    expect(d).toMatchObject({ allowed: true, policy: 'per-hour', remaining: 2, limit: 1000, windowMs: 3_600_000, resetMs: 9000, retryAfterMs: 0 });
    expect(d.policies).toEqual([a, b]);
  });

  it('admitted with equal remaining: the first rule in configuration order decides', () => {
    const d = combine('k', 1, [outcome({ policy: 'a', remaining: 2 }), outcome({ policy: 'b', remaining: 2 })]);
    expect(d.policy).toBe('a');
  });

  it('refused: a refusing rule decides even when an admitting rule has fewer remaining', () => {
    const a = outcome({ policy: 'admits', remaining: 0 });
    const b = outcome({ policy: 'refuses', allowed: false, remaining: 3, retryAfterMs: 50, resetMs: 70 });
    const d = combine('k', 4, [a, b]);
    expect(d).toMatchObject({ allowed: false, policy: 'refuses', remaining: 3, retryAfterMs: 50, resetMs: 70 });
    expect(d.policies).toEqual([a, b]);
  });

  it('refused by several: the longest wait decides (Infinity beats any finite wait)', () => {
    const a = outcome({ policy: 'short', allowed: false, remaining: 0, retryAfterMs: 10 });
    const b = outcome({ policy: 'long', allowed: false, remaining: 0, retryAfterMs: 5000 });
    const c = outcome({ policy: 'never', allowed: false, remaining: 0, retryAfterMs: Infinity });
    expect(combine('k', 1, [a, b]).policy).toBe('long');
    expect(combine('k', 1, [b, a]).policy).toBe('long');
    expect(combine('k', 1, [a, c, b])).toMatchObject({ policy: 'never', retryAfterMs: Infinity });
  });

  it('refused: remaining is what the deciding rule has now, the same as a single rule reports', () => {
    // A cost of 9 did not fit in the 4 units left: 4 are still there for a smaller request.
    const a = outcome({ policy: 'a', allowed: false, remaining: 4, retryAfterMs: 1 });
    const b = outcome({ policy: 'b', allowed: true, remaining: 1 });
    const d = combine('k', 9, [a, b]);
    expect(d.remaining).toBe(4);
    expect(d.policies[0]?.remaining).toBe(4);
  });

  it('needs at least one outcome', () => {
    expect(() => combine('k', 1, [])).toThrow(/at least one/);
  });
});

// Decisions and outcomes are built by constructors (not literals) for the garbage collector's sake
// (see src/core/decision.ts); to every reader they are the same plain data as before.
describe('decision objects are plain data', () => {
  const o = ruleOutcome('per-second', true, 10, 4, 250.5, 0, 1000);
  const d = singleDecision('user:1', 2, o);

  it('own enumerable fields in the order of the interfaces, nothing else', () => {
    expect(Object.keys(o)).toEqual(['policy', 'allowed', 'limit', 'remaining', 'resetMs', 'retryAfterMs', 'windowMs']);
    expect(Object.keys(d)).toEqual(['key', 'cost', 'policy', 'allowed', 'limit', 'remaining', 'resetMs', 'retryAfterMs', 'windowMs', 'policies']);
    expect(Object.keys(combine('k', 1, [o, o]))).toEqual(Object.keys(d));
  });

  it('spread, JSON and structuredClone keep every field, policies included', () => {
    const plain = { key: 'user:1', cost: 2, policy: 'per-second', allowed: true, limit: 10, remaining: 4, resetMs: 250.5, retryAfterMs: 0, windowMs: 1000, policies: [{ ...o }] };
    expect({ ...d }).toEqual(plain);
    expect(JSON.parse(JSON.stringify(d))).toEqual(plain);
    expect(structuredClone(d)).toEqual(plain);
    expect(Array.isArray(d.policies) && d.policies.length === 1 && d.policies[0] === o).toBe(true);
  });
});
