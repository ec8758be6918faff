/**
 * Failure behaviour on a redis-server this suite owns (port 7000/7001): Redis killed mid-load,
 * every failing decision rejects promptly with StoreError, the same store recovers once Redis is
 * back on the same port; the script cache flushed (NOSCRIPT) is reloaded transparently; a script
 * error is STORE_FAILURE; an unreachable server is STORE_UNAVAILABLE from the first decision.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { compileRules } from '../../src/core/rule.js';
import { createLimiter, StoreError } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { skipWithoutRedis, startRedis, type RedisServer } from '../support/redis-server.js';

const skip = skipWithoutRedis('redis-outage');
const servers: RedisServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop();
});

/** Upper bound for "promptly": a decision must never hang while Redis is down. */
const PROMPT_MS = 2000;

describe.skipIf(skip)('Redis outage', () => {
  it('killed mid-load: failures are StoreErrors, promptly; the same store works again after restart', async () => {
    const server = await startRedis(7000);
    servers.push(server);
    const store = new RedisStore({ url: server.url, timeoutMs: 250 });
    const limiter = createLimiter({ limit: 1e9, windowMs: 60_000, store });
    let ok = 0;
    const failures: { error: unknown; ms: number }[] = [];
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const t0 = performance.now();
        try {
          await limiter.consume(`k${w}:${i % 50}`);
          ok++;
        } catch (error) {
          failures.push({ error, ms: performance.now() - t0 });
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    };
    const workers = Array.from({ length: 20 }, (_, w) => worker(w));
    while (ok < 2000) await new Promise((r) => setTimeout(r, 10));
    await server.kill();
    const killedAt = failures.length;
    // Load keeps running against the dead server for a while.
    await new Promise((r) => setTimeout(r, 1000));
    const duringOutage = failures.length - killedAt;
    const okBeforeRestart = ok;
    const restarted = await startRedis(7000, [], server.dir);
    servers.push(restarted);
    const deadline = Date.now() + 15_000;
    while (ok < okBeforeRestart + 500 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await Promise.all(workers);
    await store.close();

    expect(duringOutage).toBeGreaterThan(0);
    for (const f of failures) {
      expect(f.error).toBeInstanceOf(StoreError);
      expect(['STORE_UNAVAILABLE', 'STORE_TIMEOUT']).toContain((f.error as StoreError).code);
      expect(f.ms).toBeLessThan(PROMPT_MS);
    }
    // Recovered without recreating the store.
    expect(ok).toBeGreaterThanOrEqual(okBeforeRestart + 500);
  }, 40_000);

  it('a server that never answers: STORE_UNAVAILABLE or STORE_TIMEOUT, never a hang', async () => {
    const store = new RedisStore({ url: 'redis://127.0.0.1:7099', timeoutMs: 200 });
    const l = createLimiter({ limit: 5, windowMs: 1000, store });
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const err = await l.consume('x').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreError);
      expect(['STORE_UNAVAILABLE', 'STORE_TIMEOUT']).toContain((err as StoreError).code);
      expect(performance.now() - t0).toBeLessThan(PROMPT_MS);
    }
    await store.close();
  });
});

describe.skipIf(skip)('script cache and script errors', () => {
  it('after SCRIPT FLUSH the next decision falls back to EVAL (NOSCRIPT) and EVALSHA hits again after', async () => {
    const server = await startRedis(7001);
    servers.push(server);
    const admin = new Redis(server.url);
    const store = new RedisStore({ url: server.url, timeoutMs: 5000 });
    const l = createLimiter({ limit: 3, windowMs: 60_000, store });
    try {
      const stats = async () => {
        const info = await admin.info('commandstats');
        const n = (c: string) => Number(new RegExp(`cmdstat_${c}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
        return { eval: n('eval'), evalsha: n('evalsha') };
      };
      expect((await l.consume('a')).remaining).toBe(2);
      await admin.script('FLUSH');
      const before = await stats();
      expect((await l.consume('a')).remaining).toBe(1);
      const mid = await stats();
      expect(mid.eval - before.eval).toBe(1);
      expect(mid.evalsha - before.evalsha).toBe(1); // the one that got NOSCRIPT
      expect((await l.consume('a')).remaining).toBe(0);
      const after = await stats();
      expect(after.eval - mid.eval).toBe(0);
      expect(after.evalsha - mid.evalsha).toBe(1);
    } finally {
      await store.close();
      admin.disconnect();
    }
  });

  it('a script error (state key holding the wrong type) is STORE_FAILURE and the store keeps working', async () => {
    const server = servers.find((s) => s.port === 7001) as RedisServer;
    const admin = new Redis(server.url);
    const store = new RedisStore({ url: server.url, prefix: 'wrong:', timeoutMs: 5000 });
    const rules = compileRules([{ name: 'r', limit: 2, windowMs: 1000 }]);
    try {
      await admin.hset('wrong:{k}:gcra:r', 'f', 'v');
      // Issued together, so all three share one script call: only the bad one fails.
      const [before, bad, after] = await Promise.allSettled([
        store.decide('a', rules, 1),
        store.decide('k', rules, 1),
        store.decide('b', rules, 1),
      ]);
      expect(bad?.status).toBe('rejected');
      const err = (bad as PromiseRejectedResult).reason as unknown;
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).code).toBe('STORE_FAILURE');
      expect((err as StoreError).message).toMatch(/WRONGTYPE/);
      expect(before).toMatchObject({ status: 'fulfilled', value: { allowed: true, remaining: 1 } });
      expect(after).toMatchObject({ status: 'fulfilled', value: { allowed: true, remaining: 1 } });
      expect((await store.decide('other', rules, 1)).allowed).toBe(true);
      // Alone, the decision runs the single-decision script: the same error, the same recovery.
      const alone = await store.decide('k', rules, 1).then(() => undefined, (e: unknown) => e);
      expect(alone).toBeInstanceOf(StoreError);
      expect((alone as StoreError).code).toBe('STORE_FAILURE');
      expect((alone as StoreError).message).toMatch(/WRONGTYPE/);
      expect((await store.decide('other', rules, 1)).remaining).toBe(0);
      // A sliding log reads its entries during its step, after the guarded read: same outcome.
      const log = compileRules([{ name: 'l', limit: 2, windowMs: 1000, algorithm: 'sliding-log' }]);
      await admin.hset('wrong:{k}:sliding-log:l', 'f', 'v');
      const logErr = await store.decide('k', log, 1).then(() => undefined, (e: unknown) => e);
      expect(logErr).toBeInstanceOf(StoreError);
      expect((logErr as StoreError).code).toBe('STORE_FAILURE');
      expect((logErr as StoreError).message).toMatch(/WRONGTYPE/);
      expect((await store.decide('other', log, 1)).remaining).toBe(1);
    } finally {
      await store.close();
      admin.disconnect();
    }
  });
});
