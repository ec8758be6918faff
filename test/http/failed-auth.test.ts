/**
 * Failed-authentication protection, the module on its own (src/http/failed-auth.ts): only the
 * configured statuses count as failures; the `threshold`-th failure within the window starts a
 * penalty of exactly `penalty` length; a penalty is checked by a peek that writes nothing; both
 * halves live in the ordinary store, so memory and Redis behave alike.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { manualClock, type ManualClock } from '../../src/core/clock.js';
import type { Decision } from '../../src/core/decision.js';
import type { Rule } from '../../src/core/rule.js';
import type { Store } from '../../src/core/store.js';
import { penaltyStatus, recordOutcome, type DecideFn } from '../../src/http/failed-auth.js';
import { compilePolicy } from '../../src/http/options.js';
import { RedisStore } from '../../src/redis.js';
import { MemoryStore } from '../../src/stores/memory-store.js';
import { deletePrefix, REDIS_URL, skipWithoutRedis } from '../support/redis-server.js';

const skipRedis = skipWithoutRedis('failed-auth');
/** Three failures (401 or 403) within 10 s start a 30 s penalty. */
const login = compilePolicy({ failedAuth: { threshold: 3, windowSeconds: 10, penaltySeconds: 30, countStatuses: [401, 403] }, algorithm: 'fixed-window' }, 'login');
const KEY = 'ip:10.0.0.1';

/** The store's decide, with every call recorded. */
function recorded(store: Store): { decide: DecideFn; calls: { rules: string[]; peek: boolean }[] } {
  const calls: { rules: string[]; peek: boolean }[] = [];
  const decide: DecideFn = (key, rules: readonly Rule[], cost, peek) => {
    calls.push({ rules: rules.map((r) => r.name), peek });
    return store.decide(key, rules, cost, peek);
  };
  return { decide, calls };
}

function memory(): { clock: ManualClock; store: MemoryStore } {
  const clock = manualClock();
  return { clock, store: new MemoryStore({ clock }) };
}

describe('penaltyStatus', () => {
  it('a key with no penalty is allowed, and asking writes nothing (one peek of the penalty rule)', async () => {
    const { store } = memory();
    const { decide, calls } = recorded(store);
    for (let i = 0; i < 3; i++) expect((await penaltyStatus(decide, login, KEY)).allowed).toBe(true);
    expect(calls).toEqual(Array(3).fill({ rules: ['login:penalty'], peek: true }));
    expect(store.size).toBe(0);
  });
});

describe('recordOutcome', () => {
  it('statuses outside countStatuses are not failures: nothing is asked of the store', async () => {
    const { store } = memory();
    const { decide, calls } = recorded(store);
    for (const status of [200, 302, 404, 429, 500]) expect(await recordOutcome(decide, login, KEY, status)).toBe(false);
    expect(calls).toEqual([]);
  });

  it('the threshold-th failure within the window starts the penalty (resolves true); the key is then refused for exactly the penalty', async () => {
    const { clock, store } = memory();
    const decide = store.decide.bind(store);
    expect(await recordOutcome(decide, login, KEY, 401)).toBe(false);
    expect(await recordOutcome(decide, login, KEY, 403)).toBe(false);
    expect((await penaltyStatus(decide, login, KEY)).allowed).toBe(true);
    expect(await recordOutcome(decide, login, KEY, 401)).toBe(true);
    const blocked = await penaltyStatus(decide, login, KEY);
    expect(blocked).toMatchObject({ allowed: false, retryAfterMs: 30_000 });
    // Another identifier is untouched.
    expect((await penaltyStatus(decide, login, 'ip:10.0.0.2')).allowed).toBe(true);
    clock.advance(29_999);
    expect((await penaltyStatus(decide, login, KEY)).allowed).toBe(false);
    clock.advance(1);
    expect((await penaltyStatus(decide, login, KEY)).allowed).toBe(true);
  });

  it('failures in different windows do not add up', async () => {
    const { clock, store } = memory();
    const decide = store.decide.bind(store);
    clock.set(Date.UTC(2026, 0, 1)); // a window boundary (10 s windows are epoch-aligned)
    expect(await recordOutcome(decide, login, KEY, 401)).toBe(false);
    expect(await recordOutcome(decide, login, KEY, 401)).toBe(false);
    clock.advance(10_000);
    expect(await recordOutcome(decide, login, KEY, 401)).toBe(false);
    expect(await recordOutcome(decide, login, KEY, 401)).toBe(false);
    expect((await penaltyStatus(decide, login, KEY)).allowed).toBe(true);
  });

  it('failures during a penalty neither start a second one nor extend it', async () => {
    const { clock, store } = memory();
    const decide = store.decide.bind(store);
    for (let i = 0; i < 3; i++) await recordOutcome(decide, login, KEY, 401);
    clock.advance(10_000);
    for (let i = 0; i < 5; i++) expect(await recordOutcome(decide, login, KEY, 401)).toBe(false);
    expect((await penaltyStatus(decide, login, KEY)).retryAfterMs).toBe(20_000);
  });

  it('a store failure rejects (the engine counts it and follows onStoreError)', async () => {
    const failing: DecideFn = (): Promise<Decision> => Promise.reject(new Error('store down'));
    await expect(recordOutcome(failing, login, KEY, 401)).rejects.toThrow('store down');
    await expect(penaltyStatus(failing, login, KEY)).rejects.toThrow('store down');
  });

  it('on Redis, two stores (two processes) count one identifier together and see one penalty', async (ctx) => {
    if (skipRedis) ctx.skip();
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const prefix = `sluicefa${randomUUID().slice(0, 8)}:`;
    const [a, b] = [0, 1].map(() => new RedisStore({ url: REDIS_URL, prefix, clock, timeoutMs: 5000 })) as [RedisStore, RedisStore];
    try {
      const da = a.decide.bind(a);
      const db = b.decide.bind(b);
      expect(await recordOutcome(da, login, KEY, 401)).toBe(false);
      expect(await recordOutcome(db, login, KEY, 401)).toBe(false);
      expect(await recordOutcome(da, login, KEY, 403)).toBe(true);
      clock.advance(5000);
      expect(await penaltyStatus(db, login, KEY)).toMatchObject({ allowed: false, retryAfterMs: 25_000 });
    } finally {
      await a.close();
      await b.close();
      await deletePrefix(REDIS_URL, prefix);
    }
  });
});
