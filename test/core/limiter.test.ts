/**
 * The limiter: `consume`, `consumeSync`, `peek`, `reset` over one or several limits decided
 * atomically (all or nothing), with keys and costs checked before they reach the store.
 */
import { describe, expect, it } from 'vitest';
import { InvalidKeyError } from '../../src/core/errors.js';
import type { Store } from '../../src/core/store.js';
import { DEFAULT_MAX_KEY_LENGTH } from '../../src/core/key.js';
import { limiterOn } from '../../src/core/limiter.js';
import { createLimiter, MemoryStore, type Limiter } from '../../src/index.js';
import { microClock } from './harness.js';

/** 10 per second AND 20 per minute (GCRA + fixed window). */
function twoLimits(clock = microClock()) {
  const limiter = createLimiter({
    clock,
    limits: [
      { name: 'per-second', limit: 10, windowMs: 1000 },
      { name: 'per-minute', limit: 20, windowMs: 60_000, algorithm: 'fixed-window' },
    ],
  });
  return { limiter, clock };
}

describe('several limits, decided atomically', () => {
  it('the tightest rule describes an admitted request; policies lists every rule in order', async () => {
    const { limiter } = twoLimits();
    const d = await limiter.consume('u');
    expect(d).toMatchObject({ allowed: true, policy: 'per-second', remaining: 9, limit: 10, windowMs: 1000, key: 'u', cost: 1 });
    expect(d.policies.map((p) => [p.policy, p.allowed, p.remaining])).toEqual([
      ['per-second', true, 9],
      ['per-minute', true, 19],
    ]);
  });

  it('a request refused by one rule consumes from none', async () => {
    const { limiter, clock } = twoLimits();
    for (let i = 0; i < 10; i++) expect((await limiter.consume('u')).allowed).toBe(true);
    // The per-second rule refuses; hammering must not eat the per-minute budget.
    for (let i = 0; i < 100; i++) {
      const d = await limiter.consume('u');
      expect(d).toMatchObject({ allowed: false, policy: 'per-second' });
      expect(d.policies[1]).toMatchObject({ policy: 'per-minute', allowed: true, remaining: 10 });
    }
    clock.advance(1000);
    // Exactly the 10 left in the per-minute window pass now.
    for (let i = 0; i < 10; i++) expect((await limiter.consume('u')).allowed).toBe(true);
    const d = await limiter.consume('u');
    expect(d).toMatchObject({ allowed: false, policy: 'per-minute' });
    expect(d.retryAfterMs).toBe(59_000);
  });

  it('a cost that one rule admits and another refuses takes nothing from either', async () => {
    const { limiter } = twoLimits();
    await limiter.consume('u', 5); // per-second: 5 left; per-minute: 15 left
    const d = await limiter.consume('u', 8);
    expect(d).toMatchObject({ allowed: false, policy: 'per-second', remaining: 5, retryAfterMs: 300 });
    expect((await limiter.peek('u', 5)).allowed).toBe(true);
    expect((await limiter.consume('u', 5)).policies.map((p) => p.remaining)).toEqual([0, 10]);
  });

  it('refused by several: the rule with the longest wait decides', async () => {
    const clock = microClock();
    const limiter = createLimiter({
      clock,
      limits: [
        { name: 'burst', limit: 2, windowMs: 1000, algorithm: 'sliding-log' },
        { name: 'daily', limit: 2, windowMs: 86_400_000, algorithm: 'sliding-log' },
      ],
    });
    await limiter.consume('u', 2);
    const d = await limiter.consume('u');
    expect(d).toMatchObject({ allowed: false, policy: 'daily', retryAfterMs: 86_400_000 });
    expect(d.policies.map((p) => p.retryAfterMs)).toEqual([1000, 86_400_000]);
  });

  it('a cost above the smallest limit is refused forever, by that rule', async () => {
    const { limiter } = twoLimits();
    const d = await limiter.consume('u', 11);
    expect(d).toMatchObject({ allowed: false, policy: 'per-second', retryAfterMs: Infinity });
    expect(d.policies[1]?.allowed).toBe(true);
  });

  it('every algorithm can be combined with every other', async () => {
    const clock = microClock();
    const limiter = createLimiter({
      clock,
      limits: [
        { name: 'g', limit: 5, windowMs: 1000 },
        { name: 'f', limit: 4, windowMs: 1000, algorithm: 'fixed-window' },
        { name: 'w', limit: 6, windowMs: 1000, algorithm: 'sliding-window' },
        { name: 'l', limit: 3, windowMs: 1000, algorithm: 'sliding-log' },
      ],
    });
    const allowed = [];
    for (let i = 0; i < 6; i++) allowed.push((await limiter.consume('k')).allowed);
    expect(allowed).toEqual([true, true, true, false, false, false]);
    const d = await limiter.peek('k');
    expect(d.policy).toBe('l');
    expect(d.policies.map((p) => p.remaining)).toEqual([2, 1, 3, 0]);
  });
});

describe('peek and reset', () => {
  it('peek tells what a request would get and changes nothing', async () => {
    const { limiter } = twoLimits();
    for (let i = 0; i < 100; i++) expect(await limiter.peek('u')).toMatchObject({ allowed: true, remaining: 9 });
    expect(await limiter.peek('u', 11)).toMatchObject({ allowed: false, retryAfterMs: Infinity });
    expect((limiter.store as MemoryStore).size).toBe(0);
    expect((await limiter.consume('u', 10)).allowed).toBe(true);
    expect(await limiter.peek('u')).toMatchObject({ allowed: false, retryAfterMs: 100, remaining: 0 });
  });

  it('cost 0 is a peek too: it writes nothing', async () => {
    const { limiter } = twoLimits();
    expect(await limiter.consume('u', 0)).toMatchObject({ allowed: true, remaining: 10, cost: 0 });
    expect(limiter.consumeSync('v', 0).allowed).toBe(true);
    expect((limiter.store as MemoryStore).size).toBe(0);
  });

  it('reset forgets the key under every rule, and only that key', async () => {
    const { limiter } = twoLimits();
    await limiter.consume('a', 10);
    await limiter.consume('b', 10);
    await limiter.reset('a');
    expect(await limiter.consume('a', 10)).toMatchObject({ allowed: true });
    expect((await limiter.consume('b')).allowed).toBe(false);
  });

  it('limiters with different rule names on one store keep separate state', async () => {
    const clock = microClock();
    const store = new MemoryStore({ clock });
    const a = limiterOn(store, { name: 'a', limit: 1, windowMs: 1000 });
    const b = limiterOn(store, { name: 'b', limit: 1, windowMs: 1000 });
    expect((await a.consume('k')).allowed).toBe(true);
    expect((await b.consume('k')).allowed).toBe(true);
    expect((await a.consume('k')).allowed).toBe(false);
  });
});

describe('bad keys', () => {
  const limiter = createLimiter({ limit: 5, windowMs: 1000, maxKeyLength: 64 });
  const bad: [string, unknown][] = [
    ['a number', 42],
    ['undefined', undefined],
    ['null', null],
    ['an object', { toString: () => 'k' }],
    ['a symbol', Symbol('k')],
    ['too long', 'x'.repeat(65)],
    ['a lone high surrogate', 'user-\uD83D'],
    ['a lone low surrogate', '\uDE00user'],
  ];

  it.each(bad)('%s: consume and peek reject with InvalidKeyError; consumeSync throws it', async (_label, key) => {
    await expect(limiter.consume(key as string)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(limiter.peek(key as string)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(limiter.reset(key as string)).rejects.toBeInstanceOf(InvalidKeyError);
    expect(() => limiter.consumeSync(key as string)).toThrow(InvalidKeyError);
  });

  it('the error says what was wrong', async () => {
    await expect(limiter.consume('x'.repeat(65))).rejects.toThrow(/length 65 exceeds the maximum of 64/);
    await expect(limiter.consume(7 as unknown as string)).rejects.toThrow(/expected a string, got number/);
    await expect(limiter.consume('\uD800')).rejects.toThrow(/surrogate/);
  });

  it('the default maximum is DEFAULT_MAX_KEY_LENGTH code units, inclusive', async () => {
    const l = createLimiter({ limit: 1, windowMs: 1000 });
    expect((await l.consume('k'.repeat(DEFAULT_MAX_KEY_LENGTH))).allowed).toBe(true);
    await expect(l.consume('k'.repeat(DEFAULT_MAX_KEY_LENGTH + 1))).rejects.toBeInstanceOf(InvalidKeyError);
  });

  it('a bad key consumes nothing and the limiter keeps working', async () => {
    const l = createLimiter({ limit: 1, windowMs: 1000 });
    await expect(l.consume(undefined as unknown as string)).rejects.toThrow();
    expect((await l.consume('undefined')).allowed).toBe(true);
  });
});

describe('hostile but valid keys', () => {
  const keys = [
    '',
    ' ',
    'a\nb',
    'a\r\nb',
    '\u0000\u0001\u0002binary\u00ff',
    '{user}',
    '{{',
    '}{',
    'a:b:c',
    '😀🚀',
    '\uD83D\uDE00', // a well-formed surrogate pair
    'ключ',
    'null',
    '__proto__',
    'constructor',
    'x'.repeat(1024),
  ];

  it('each key gets its own state, distinct from every other', async () => {
    const clock = microClock();
    const limiter = createLimiter({ limit: 1, windowMs: 60_000, clock });
    for (const k of keys) expect((await limiter.consume(k)).allowed, JSON.stringify(k)).toBe(true);
    for (const k of keys) {
      const d = await limiter.consume(k);
      expect(d.allowed, JSON.stringify(k)).toBe(false);
      expect(d.key).toBe(k);
    }
    await limiter.reset('{user}');
    expect((await limiter.consume('{user}')).allowed).toBe(true);
    expect((await limiter.consume('{{')).allowed).toBe(false);
  });
});

describe('bad costs', () => {
  const limiter = createLimiter({ limit: 5, windowMs: 1000 });
  it.each([[-1], [Number.NaN], [1.5], [Number.POSITIVE_INFINITY], [2 ** 53], ['2'], [null]])(
    'cost %s is refused with RangeError',
    async (cost) => {
      await expect(limiter.consume('k', cost as number)).rejects.toBeInstanceOf(RangeError);
      await expect(limiter.peek('k', cost as number)).rejects.toBeInstanceOf(RangeError);
      expect(() => limiter.consumeSync('k', cost as number)).toThrow(RangeError);
    },
  );

  it('a refused cost consumes nothing', async () => {
    await expect(limiter.consume('c', -3)).rejects.toThrow(/cost must be an integer >= 0, got -3/);
    expect((await limiter.peek('c', 0)).remaining).toBe(5);
  });

  it('a huge (safe integer) cost is refused forever, not an error', async () => {
    expect(await limiter.consume('k', Number.MAX_SAFE_INTEGER)).toMatchObject({ allowed: false, retryAfterMs: Infinity });
  });
});

describe('stores without a synchronous path', () => {
  /** The memory store seen through the plain async Store interface only. */
  function asyncOnly(inner: MemoryStore): Store {
    return {
      decide: (...a) => inner.decide(...a),
      charge: (...a) => inner.charge(...a),
      reset: (...a) => inner.reset(...a),
      acquire: (...a) => inner.acquire(...a),
      release: (...a) => inner.release(...a),
      close: () => inner.close(),
    };
  }

  it('consume goes through store.decide; consumeSync refuses clearly', async () => {
    const clock = microClock();
    const limiter: Limiter = limiterOn(asyncOnly(new MemoryStore({ clock })), { limit: 2, windowMs: 1000 });
    expect((await limiter.consume('k', 2)).allowed).toBe(true);
    expect((await limiter.consume('k')).allowed).toBe(false);
    expect(() => limiter.consumeSync('k')).toThrow(/synchronous store/);
    await expect(limiter.consume('\uD800')).rejects.toBeInstanceOf(InvalidKeyError);
  });
});
