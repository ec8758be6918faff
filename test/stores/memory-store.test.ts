/**
 * MemoryStore: the embedded default. Bounded (expired state is recycled first, then an LRU
 * approximation drops the least recently used key), synchronous, and its fast path decides exactly
 * like the generic path and the async `consume`.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { limiterOn } from '../../src/core/limiter.js';
import { createLimiter, MemoryStore, type Decision, type LimiterOptions } from '../../src/index.js';
import { microClock } from '../core/harness.js';

/** A way to run the garbage collector before reading heapUsed, with or without --expose-gc. */
function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g();
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

function heapMB(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

describe('MemoryStore: bounded under a flood of distinct keys', () => {
  it(
    '10 million distinct keys through consumeSync: size stays <= maxKeys, heap stays flat, hot keys keep their state',
    () => {
      const clock = microClock();
      const store = new MemoryStore({ maxKeys: 100_000, clock });
      const limiter = createLimiter({ limit: 5, windowMs: 60_000, store });
      const hot = ['hot:0', 'hot:1', 'hot:2', 'hot:3'];
      // One hot key is limited before the flood and must stay limited through it.
      for (let i = 0; i < 5; i++) limiter.consumeSync('limited');
      expect(limiter.consumeSync('limited').allowed).toBe(false);
      for (const k of hot) limiter.consumeSync(k);

      let heapAtCapacity = 0;
      for (let i = 0; i < 10_000_000; i++) {
        limiter.consumeSync(`flood:${i}`);
        if (i % 1000 === 999) {
          clock.advanceUs(1000);
          // Hot keys are touched regularly (a refused request counts as a use too).
          expect(limiter.consumeSync('limited').allowed).toBe(false);
          for (const k of hot) limiter.peek(k);
          for (const k of hot) limiter.consumeSync(k, 0);
        }
        if (i % 1_000_000 === 999_999) {
          expect(store.size).toBeLessThanOrEqual(100_000);
          if (i === 999_999) heapAtCapacity = heapMB();
        }
      }
      const heapEnd = heapMB();
      expect(store.size).toBeLessThanOrEqual(100_000);
      expect(store.size).toBeGreaterThan(99_000);
      // The table reached its cap after 100k keys: the next 9 million add nothing lasting.
      expect(heapEnd - heapAtCapacity).toBeLessThan(32);
      // Every flood key was still live (60 s window), so the cap dropped live state.
      expect(store.evictedLive).toBeGreaterThan(9_000_000);
      expect(limiter.consumeSync('limited').allowed).toBe(false);
      // A hot key kept its state: exactly the 4 units it has left pass.
      for (let i = 0; i < 4; i++) expect(limiter.consumeSync('hot:0').allowed).toBe(true);
      expect(limiter.consumeSync('hot:0').allowed).toBe(false);
    },
    180_000,
  );

  it('expired state is recycled before any live key is dropped', () => {
    const clock = microClock();
    const store = new MemoryStore({ maxKeys: 1000, clock });
    const limiter = createLimiter({ limit: 1, windowMs: 10, algorithm: 'fixed-window', store });
    limiter.consumeSync('keep');
    for (let i = 0; i < 200_000; i++) {
      limiter.consumeSync(`k${i}`);
      // 10 keys per window: at most ~20 live keys at a time, far below the cap.
      if (i % 10 === 9) clock.advance(10);
      if (i % 500 === 0) limiter.consumeSync('keep');
    }
    expect(store.size).toBeLessThanOrEqual(1000);
    expect(store.evictedLive).toBe(0);
  });

  it('every algorithm and several rules stay bounded, per rule', () => {
    const clock = microClock();
    const store = new MemoryStore({ maxKeys: 5000, clock });
    const limiter = createLimiter({
      store,
      limits: [
        { name: 'g', limit: 2, windowMs: 60_000 },
        { name: 'f', limit: 2, windowMs: 60_000, algorithm: 'fixed-window' },
        { name: 'w', limit: 2, windowMs: 60_000, algorithm: 'sliding-window' },
        { name: 'l', limit: 2, windowMs: 60_000, algorithm: 'sliding-log' },
      ],
    });
    for (let i = 0; i < 200_000; i++) limiter.consumeSync(`k${i}`);
    expect(store.size).toBeLessThanOrEqual(4 * 5000);
  });

  it('maxKeys 1 still decides correctly for the one key it holds', () => {
    const clock = microClock();
    const store = new MemoryStore({ maxKeys: 1, clock });
    const limiter = createLimiter({ limit: 1, windowMs: 1000, algorithm: 'sliding-log', store });
    expect(limiter.consumeSync('a').allowed).toBe(true);
    expect(limiter.consumeSync('a').allowed).toBe(false);
    expect(limiter.consumeSync('b').allowed).toBe(true); // drops 'a' (counted)
    expect(store.size).toBe(1);
    expect(store.evictedLive).toBe(1);
  });

  it('concurrency leases are bounded too, and a released key holds nothing', async () => {
    const clock = microClock();
    const store = new MemoryStore({ maxKeys: 100, clock });
    const rule = { name: 'c', id: 'concurrency:c', limit: 1, leaseMs: 1000, leaseUs: 1_000_000 };
    for (let i = 0; i < 1000; i++) await store.acquire(`k${i}`, rule, 1, `l${i}`);
    expect(store.size).toBeLessThanOrEqual(100);
    await store.release('k999', rule, 'l999');
    expect((await store.acquire('k999', rule, 1, 'again')).allowed).toBe(true);
  });
});

describe('MemoryStore: writes only what it must', () => {
  it('peek and cost 0 write nothing for any algorithm; a refusal writes nothing', async () => {
    for (const algorithm of ['gcra', 'fixed-window', 'sliding-window', 'sliding-log'] as const) {
      const clock = microClock();
      const store = new MemoryStore({ clock });
      const limiter = createLimiter({ limit: 2, windowMs: 1000, algorithm, store });
      await limiter.peek('a');
      await limiter.consume('b', 0);
      limiter.consumeSync('c', 0);
      await limiter.consume('d', 3); // refused: cost above the limit
      expect(store.size, algorithm).toBe(0);
    }
  });

  it('reset removes the key; close empties the store', async () => {
    const clock = microClock();
    const store = new MemoryStore({ clock });
    const limiter = createLimiter({ limit: 1, windowMs: 1000, store });
    limiter.consumeSync('a');
    limiter.consumeSync('b');
    await limiter.reset('a');
    expect(store.size).toBe(1);
    await store.close();
    expect(store.size).toBe(0);
    expect(limiter.consumeSync('b').allowed).toBe(true);
  });
});

describe('MemoryStore: the fast paths decide exactly like the generic path', () => {
  const configs: [string, LimiterOptions][] = [
    ['gcra (prepared fast path)', { limit: 3, windowMs: 100, burst: 5 }],
    ['fixed-window', { limit: 3, windowMs: 100, algorithm: 'fixed-window' }],
    ['sliding-window', { limit: 3, windowMs: 100, algorithm: 'sliding-window' }],
    ['sliding-log', { limit: 3, windowMs: 100, algorithm: 'sliding-log' }],
    [
      'two limits',
      {
        limits: [
          { name: 's', limit: 3, windowMs: 100 },
          { name: 'm', limit: 10, windowMs: 1000, algorithm: 'sliding-window' },
        ],
      },
    ],
  ];

  const opsArb = fc.array(
    fc.record({
      dt: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60_000 })),
      key: fc.constantFrom('a', 'b', 'c'),
      cost: fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 6 })),
      peek: fc.boolean(),
    }),
    { minLength: 1, maxLength: 80 },
  );

  it.each(configs)('%s: consumeSync, consume and store.decideSync agree on every decision', async (_label, options) => {
    await fc.assert(
      fc.asyncProperty(opsArb, async (ops) => {
        const clock = microClock();
        const sync = createLimiter({ ...options, clock });
        const async_ = createLimiter({ ...options, clock });
        const generic = new MemoryStore({ clock });
        const rules = sync.rules;
        for (const { dt, key, cost, peek } of ops) {
          clock.advanceUs(dt);
          let a: Decision;
          let b: Decision;
          if (peek) {
            a = await sync.peek(key, cost);
            b = await async_.peek(key, cost);
          } else {
            a = sync.consumeSync(key, cost);
            b = await async_.consume(key, cost);
          }
          const c = generic.decideSync(key, rules, cost, peek);
          expect(b).toEqual(a);
          expect(c).toEqual(a);
        }
      }),
      { numRuns: 60 },
    );
  });

  // A reset frees its slot by moving the table's last key into it (its state with it, whichever of
  // the table's number arrays holds it): every other key must decide as if nothing had moved.
  it.each(configs)('%s: after resets, every key decides as it would alone in its own store', async (_label, options) => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ dt: fc.integer({ min: 0, max: 40_000 }), key: fc.constantFrom('a', 'b', 'c', 'd', 'e'), reset: fc.boolean() }), {
          minLength: 1,
          maxLength: 80,
        }),
        async (ops) => {
          const clock = microClock();
          const shared = createLimiter({ ...options, clock });
          const alone = new Map<string, ReturnType<typeof createLimiter>>();
          const own = (key: string) => {
            let l = alone.get(key);
            if (l === undefined) alone.set(key, (l = createLimiter({ ...options, clock })));
            return l;
          };
          for (const { dt, key, reset } of ops) {
            clock.advanceUs(dt);
            if (reset) {
              await shared.reset(key);
              alone.delete(key);
            } else {
              expect(shared.consumeSync(key)).toEqual(own(key).consumeSync(key));
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('limiters sharing a store share state (same rule name and algorithm)', () => {
    const clock = microClock();
    const store = new MemoryStore({ clock });
    const a = limiterOn(store, { name: 'shared', limit: 2, windowMs: 1000 });
    const b = limiterOn(store, { name: 'shared', limit: 2, windowMs: 1000 });
    expect(a.consumeSync('k').allowed).toBe(true);
    expect(b.consumeSync('k').allowed).toBe(true);
    expect(a.consumeSync('k').allowed).toBe(false);
  });
});
