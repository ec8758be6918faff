/**
 * How the engine asks its store (src/http/deciders.ts): on a synchronous store (the memory store)
 * through deciders prepared once per rule, or per ordered rule set, with a synchronous
 * `decideNow` for the hot path; on any other store through the store's own `decide`, with no
 * `decideNow`. Either way `decide` never throws: failures reject.
 */
import { describe, expect, it, vi } from 'vitest';
import { manualClock } from '../../src/core/clock.js';
import type { Decision } from '../../src/core/decision.js';
import { compileRule, type Rule } from '../../src/core/rule.js';
import type { Store } from '../../src/core/store.js';
import { createDeciders } from '../../src/http/deciders.js';
import { MemoryStore } from '../../src/stores/memory-store.js';

const rule = (name: string, limit = 2): Rule => compileRule({ name, limit, windowMs: 60_000 });

/** A store with only the asynchronous interface (like Redis), recording its calls. */
function asyncStore(): { store: Store; calls: unknown[][] } {
  const inner = new MemoryStore({ clock: manualClock() });
  const calls: unknown[][] = [];
  const store: Store = {
    decide: (key, rules, cost, peek) => {
      calls.push([key, rules, cost, peek]);
      return inner.decide(key, rules, cost, peek);
    },
    charge: (key, rules, cost) => inner.charge(key, rules, cost),
    reset: (key, rules) => inner.reset(key, rules),
    acquire: (key, r, cost, id) => inner.acquire(key, r, cost, id),
    release: (key, r, id) => inner.release(key, r, id),
    close: () => inner.close(),
  };
  return { store, calls };
}

describe('createDeciders on a store without a synchronous path', () => {
  it('has no decideNow, and decide passes every argument to the store as given', async () => {
    const { store, calls } = asyncStore();
    const d = createDeciders(store);
    expect(d.decideNow).toBeUndefined();
    const rules = [rule('a')];
    expect((await d.decide('k', rules, 2, false)).remaining).toBe(0);
    expect((await d.decide('k', rules, 1, true)).allowed).toBe(false);
    expect(calls).toEqual([
      ['k', rules, 2, false],
      ['k', rules, 1, true],
    ]);
  });
});

describe('createDeciders on the memory store', () => {
  it('decide and decideNow give the store\'s own decisions: decideNow consumes one unit, or peeks', async () => {
    const store = new MemoryStore({ clock: manualClock() });
    const { decide, decideNow } = createDeciders(store);
    const r = [rule('a', 3)];
    expect(decideNow).toBeDefined();
    const now = decideNow as NonNullable<typeof decideNow>;
    // A peek tells what one unit would leave, and writes nothing.
    expect(now('k', r, true).remaining).toBe(2);
    expect(now('k', r, true).remaining).toBe(2);
    expect(now('k', r, false).remaining).toBe(2);
    expect((await decide('k', r, 2, false)).remaining).toBe(0);
    expect(now('k', r, false).allowed).toBe(false);
    expect(store.decideSync('k', r, 1, true)).toEqual(now('k', r, true));
  });

  it('prepares a decider once per rule, and once per rule set in its order', async () => {
    const store = new MemoryStore({ clock: manualClock() });
    const prepare = vi.spyOn(store, 'prepare');
    const { decide, decideNow } = createDeciders(store);
    const [a, b] = [rule('a'), rule('b')];
    for (let i = 0; i < 3; i++) {
      await decide(`k${i}`, [a], 1, false);
      decideNow?.(`k${i}`, [a], true);
      await decide(`k${i}`, [a, b], 1, false);
      decideNow?.(`k${i}`, [b, a], true);
    }
    expect(prepare.mock.calls.map(([rules]) => rules.map((r) => r.name).join(','))).toEqual(['a', 'a,b', 'b,a']);
  });

  it('keeps a bounded number of prepared rule sets (per-caller limits cannot grow it without end)', async () => {
    const store = new MemoryStore({ clock: manualClock() });
    const prepare = vi.spyOn(store, 'prepare');
    const { decide } = createDeciders(store);
    const base = rule('base');
    const first = [base, rule('x0')];
    await decide('k', first, 1, false);
    await decide('k', first, 1, false);
    expect(prepare).toHaveBeenCalledTimes(1);
    // A thousand other sets later, the first one has been dropped and is prepared again.
    for (let i = 1; i <= 1000; i++) await decide('k', [base, rule(`x${i}`)], 1, true);
    const before = prepare.mock.calls.length;
    await decide('k', first, 1, true);
    expect(prepare.mock.calls.length).toBe(before + 1);
  });

  it('a decider that throws makes decide reject (never throw) and decideNow throw', async () => {
    const store = new MemoryStore({ clock: manualClock() });
    vi.spyOn(store, 'prepare').mockReturnValue((): Decision => {
      throw new Error('boom');
    });
    const { decide, decideNow } = createDeciders(store);
    let p: Promise<Decision> | undefined;
    expect(() => (p = decide('k', [rule('a')], 1, false))).not.toThrow();
    await expect(p).rejects.toThrow('boom');
    expect(() => decideNow?.('k', [rule('b')], false)).toThrow('boom');
  });
});
