/**
 * RedisStore against the shared Redis with time from Redis TIME: basics, key layout, hostile keys,
 * batching, option validation.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileRules } from '../../src/core/rule.js';
import { createConcurrencyLimiter, createLimiter, InvalidKeyError, SluiceConfigError } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { DECIDE, decideScriptFor, SINGLE } from '../../src/stores/redis-store.js';
import { slotOf, tagOf } from '../../src/stores/redis/keys.js';
import { deletePrefix, REDIS_URL, skipWithoutRedis } from '../support/redis-server.js';

const skip = skipWithoutRedis('redis-store');
const prefix = `sluicetest${randomUUID().slice(0, 8)}:`;
let store: RedisStore;
let raw: Redis;

beforeAll(() => {
  store = new RedisStore({ url: REDIS_URL, prefix, timeoutMs: 5000 });
  raw = new Redis(REDIS_URL);
});
afterAll(async () => {
  await store?.close();
  raw?.disconnect();
  await deletePrefix(REDIS_URL, prefix);
});

/**
 * Count the store's own calls on a real client (the shared server's counters include others'):
 * `record` sees the arguments of each `client.call`; with `holdMs`, each reply reaches the store
 * that much later, so calls stay in flight.
 */
function recordCalls(client: Redis, record: (args: unknown[]) => unknown, holdMs = 0): void {
  const call = client.call.bind(client) as (...args: unknown[]) => Promise<unknown>;
  (client as unknown as { call: (...args: unknown[]) => Promise<unknown> }).call = async (...args) => {
    record(args);
    const reply = await call(...args);
    if (holdMs > 0) await new Promise((r) => setTimeout(r, holdMs));
    return reply;
  };
}

describe('RedisStore options are validated at construction', () => {
  it.each([
    [{ prefix: 'a{b' }, 'prefix'],
    [{ prefix: 42 as unknown as string }, 'prefix'],
    [{ timeoutMs: 0 }, 'timeoutMs'],
    [{ timeoutMs: Number.NaN }, 'timeoutMs'],
    [{ url: 'http://x' }, 'url'],
    [{ url: 'redis://x', nodes: [{ port: 1 }] }, 'nodes'],
    [{ nodes: [] }, 'nodes'],
    [{ client: {} as unknown as Redis }, 'client'],
    [{ maxBatch: 0 }, 'maxBatch'],
    [{ clock: 5 as unknown as () => number }, 'clock'],
  ])('%j names %s', (options, field) => {
    let thrown: unknown;
    try {
      new RedisStore(options);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SluiceConfigError);
    expect((thrown as SluiceConfigError).field).toBe(field);
  });
});

describe('key layout', () => {
  it('escapes braces and percent so the tag is injective and never empty', () => {
    expect(tagOf('user:1')).toBe('user:1');
    expect(tagOf('')).toBe('%');
    expect(tagOf('{a}')).toBe('%7Ba%7D');
    expect(tagOf('%7Ba%7D')).toBe('%257Ba%257D');
    expect(tagOf('%')).toBe('%25');
    expect(new Set(['', '%', '{', '}', '%7B', '{}', '}{'].map(tagOf)).size).toBe(7);
  });

  it('computes Redis Cluster slots with CRC16 (known values from the Redis docs)', () => {
    expect(slotOf('123456789')).toBe(0x31c3 & 16383);
    expect(slotOf('user1000')).toBe(slotOf('user1000'));
  });
});

describe.skipIf(skip)('RedisStore with Redis TIME', () => {
  it('admits up to the limit, then refuses with an exact retry-after, and sets TTLs', async () => {
    const l = createLimiter({ limit: 3, windowMs: 60_000, store });
    const key = `time:${randomUUID()}`;
    const ds = [];
    for (let i = 0; i < 4; i++) ds.push(await l.consume(key));
    expect(ds.map((d) => d.allowed)).toEqual([true, true, true, false]);
    // GCRA: one unit of a 3-per-minute bucket takes T = 20 s to drain.
    expect(ds[0]?.resetMs).toBe(20_000);
    const refused = ds[3];
    expect(refused?.retryAfterMs).toBeGreaterThan(0);
    expect(refused?.retryAfterMs).toBeLessThanOrEqual(20_000);
    const ttl = await raw.pttl(`${prefix}{${key}}:gcra:3-per-60000ms`);
    expect(ttl).toBeGreaterThan(0);
    // A GCRA key lives at most 2 x tau (tau = 60 s here) past its last write (see src/core/algorithms/gcra/gcra.lua).
    expect(ttl).toBeLessThanOrEqual(120_001);
  });

  it('every algorithm works in TIME mode and keys expire with their useful life', async () => {
    const rules = compileRules(
      (['gcra', 'fixed-window', 'sliding-window', 'sliding-log'] as const).map((algorithm) => ({ name: algorithm, algorithm, limit: 2, windowMs: 10_000 })),
    );
    const key = `algos:${randomUUID()}`;
    const a = await store.decide(key, rules, 1);
    const b = await store.decide(key, rules, 1);
    const c = await store.decide(key, rules, 1);
    expect([a.allowed, b.allowed, c.allowed]).toEqual([true, true, false]);
    for (const r of rules) {
      const ttl = await raw.pttl(`${prefix}{${key}}:${r.id}`);
      expect(ttl, r.id).toBeGreaterThan(0);
      // sliding-window state matters for two windows, the other windows for one; a GCRA key lives
      // at most 2 x tau (tau = 10 s here).
      expect(ttl, r.id).toBeLessThanOrEqual(r.algorithm === 'sliding-window' || r.algorithm === 'gcra' ? 20_001 : 10_001);
    }
  });

  it('two stores (two connections, as two processes would) share one limit', async () => {
    const other = new RedisStore({ url: REDIS_URL, prefix, timeoutMs: 5000 });
    try {
      const key = `shared:${randomUUID()}`;
      const a = createLimiter({ limit: 2, windowMs: 60_000, algorithm: 'sliding-log', store });
      const b = createLimiter({ limit: 2, windowMs: 60_000, algorithm: 'sliding-log', store: other });
      expect((await a.consume(key)).allowed).toBe(true);
      expect((await b.consume(key)).allowed).toBe(true);
      expect((await a.consume(key)).allowed).toBe(false);
      expect((await b.consume(key)).allowed).toBe(false);
    } finally {
      await other.close();
    }
  });

  it('decisions issued together are each still exact, evaluated in issue order', async () => {
    const l = createLimiter({ limit: 10, windowMs: 60_000, algorithm: 'fixed-window', store });
    const key = `batch:${randomUUID()}`;
    const ds = await Promise.all(Array.from({ length: 25 }, () => l.consume(key)));
    expect(ds.filter((d) => d.allowed)).toHaveLength(10);
    // Remaining counts down 9..0 in issue order: the batch is evaluated in order. (How many
    // script calls carry them is specified below on the store's own client: the shared server's
    // counters also count other suites' calls.)
    expect(ds.slice(0, 10).map((d) => d.remaining)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  });

  it('one script call per flush below 32 queued decisions, two from 32 (so Node and Redis overlap)', async () => {
    const client = new Redis(REDIS_URL);
    const calls: string[] = [];
    recordCalls(client, (args) => calls.push(String(args[0])));
    const counting = new RedisStore({ client, prefix, timeoutMs: 5000 });
    try {
      const l = createLimiter({ limit: 100, windowMs: 60_000, algorithm: 'fixed-window', store: counting });
      const key = `split:${randomUUID()}`;
      await l.consume(key); // loads the script if needed
      calls.length = 0;
      await Promise.all(Array.from({ length: 31 }, () => l.consume(key)));
      expect(calls).toEqual(['EVALSHA']);
      calls.length = 0;
      const ds = await Promise.all(Array.from({ length: 64 }, () => l.consume(key)));
      expect(calls).toEqual(['EVALSHA', 'EVALSHA']);
      // Still evaluated in issue order across the two calls.
      expect(ds.map((d) => d.remaining)).toEqual(Array.from({ length: 64 }, (_, i) => 67 - i));
    } finally {
      await counting.close();
      client.disconnect();
    }
  });

  it('from 32 queued decisions, one script call when a call is already in flight (Redis has work while Node writes it)', async () => {
    // Replies held back 100 ms, so the first calls are still in flight when the next batch goes.
    const client = new Redis(REDIS_URL);
    const calls: string[] = [];
    recordCalls(client, (args) => calls.push(String(args[0])), 100);
    const counting = new RedisStore({ client, prefix, timeoutMs: 5000 });
    try {
      const l = createLimiter({ limit: 1000, windowMs: 60_000, algorithm: 'fixed-window', store: counting });
      const key = `inflight:${randomUUID()}`;
      await l.consume(key); // loads the script if needed
      calls.length = 0;
      const first = Promise.all(Array.from({ length: 64 }, () => l.consume(key)));
      await new Promise((r) => setTimeout(r, 20));
      expect(calls).toEqual(['EVALSHA', 'EVALSHA']); // nothing in flight: split
      const second = Promise.all(Array.from({ length: 40 }, () => l.consume(key)));
      await new Promise((r) => setTimeout(r, 20));
      expect(calls).toEqual(['EVALSHA', 'EVALSHA', 'EVALSHA']); // two in flight: the 40 in one call
      const ds = [...(await first), ...(await second)];
      // Evaluated in issue order across the three calls.
      expect(ds.map((d) => d.remaining)).toEqual(Array.from({ length: 104 }, (_, i) => 998 - i));
    } finally {
      await counting.close();
      client.disconnect();
    }
  });

  it('a lone decision under one rule runs its algorithm\'s single-decision script; a batch or several rules, the decide script with only their algorithms', async () => {
    const client = new Redis(REDIS_URL);
    const shas: unknown[] = [];
    // (A script new to the server then goes again as EVAL.)
    recordCalls(client, (args) => args[0] === 'EVALSHA' && shas.push(args[1]));
    const counting = new RedisStore({ client, prefix, timeoutMs: 5000 });
    try {
      const log = createLimiter({ limit: 2, windowMs: 60_000, algorithm: 'sliding-log', store: counting });
      const two = createLimiter({ limits: [{ name: 'a', limit: 2, windowMs: 60_000 }, { name: 'b', limit: 5, windowMs: 60_000 }], store: counting });
      const key = `single:${randomUUID()}`;
      expect((await log.consume(key)).remaining).toBe(1);
      expect((await log.peek(key)).remaining).toBe(0); // as MemoryStore: what would remain after it
      expect(shas).toEqual([SINGLE.get('sliding-log')?.sha, SINGLE.get('sliding-log')?.sha]);
      shas.length = 0;
      const [a, b] = await Promise.all([log.consume(key), log.consume(key)]);
      expect([a?.remaining, b?.allowed]).toEqual([0, false]);
      expect((await two.consume(key)).remaining).toBe(1);
      expect(shas).toEqual([decideScriptFor('sliding-log').sha, decideScriptFor('gcra').sha]);
      // Two rule sets in one batch: the script holds the algorithms of both (registry order).
      shas.length = 0;
      const mixed = createLimiter({ limits: [{ name: 'm', limit: 9, windowMs: 60_000, algorithm: 'fixed-window' }, { name: 'n', limit: 9, windowMs: 60_000 }], store: counting });
      const ds = await Promise.all([log.consume(`${key}:x`), mixed.consume(key), two.consume(key)]);
      expect(ds.map((d) => d.remaining)).toEqual([1, 8, 0]);
      expect(shas).toEqual([decideScriptFor('gcra,fixed-window,sliding-log').sha]);
      expect(decideScriptFor('gcra,fixed-window,sliding-log').sha).not.toBe(DECIDE.sha);
    } finally {
      await counting.close();
      client.disconnect();
    }
  });

  it('mixed rule sets and keys in one batch are each decided on their own', async () => {
    const one = createLimiter({ limit: 1, windowMs: 60_000, store });
    const two = createLimiter({ limits: [{ name: 'a', limit: 2, windowMs: 60_000 }, { name: 'b', limit: 5, windowMs: 60_000, algorithm: 'sliding-window' }], store });
    const k = randomUUID();
    const ds = await Promise.all([one.consume(`${k}:1`), two.consume(`${k}:2`), one.consume(`${k}:1`), two.consume(`${k}:2`), two.consume(`${k}:2`)]);
    expect(ds.map((d) => d.allowed)).toEqual([true, true, false, true, false]);
    expect(ds[4]?.policy).toBe('a');
    expect(ds[4]?.policies[1]).toMatchObject({ policy: 'b', allowed: true, remaining: 3 });
  });

  it('concurrency leases: limit, release, retry-after = earliest expiry', async () => {
    const c = createConcurrencyLimiter({ limit: 2, leaseMs: 5000, store });
    const key = `jobs:${randomUUID()}`;
    const a = await c.acquire(key);
    const b = await c.acquire(key);
    const refused = await c.acquire(key);
    expect([a.allowed, b.allowed, refused.allowed]).toEqual([true, true, false]);
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(5000);
    await a.lease?.release();
    expect((await c.acquire(key)).allowed).toBe(true);
    expect((await c.acquire(key, 3)).retryAfterMs).toBe(Infinity);
  });
});

describe.skipIf(skip)('hostile keys', () => {
  const hostile = [
    '',
    '{',
    '}',
    '{}',
    '}{',
    '{a}{b}',
    '%7B',
    '%',
    '%25',
    '\u0000',
    '\u0000\u0001\u007f',
    'line\r\nbreak',
    '*?[glob]',
    '😀 emoji 𝕏',
    '\uffff\ufeff',
    'עברית RTL',
    ' ',
    'a'.repeat(980),
  ];

  it('every key gets its own state, nothing collides, braces stay in one slot', async () => {
    const l = createLimiter({
      limits: [
        { name: 'x{1}', limit: 1, windowMs: 60_000 },
        { name: 'y}', limit: 5, windowMs: 60_000, algorithm: 'sliding-log' },
      ],
      store,
    });
    const run = randomUUID();
    const keys = hostile.map((k) => `${run}${k}`).concat(hostile);
    // First pass: everyone admitted (no two keys share state).
    const first = await Promise.all(keys.map((k) => l.consume(k)));
    expect(first.every((d) => d.allowed)).toBe(true);
    const second = await Promise.all(keys.map((k) => l.consume(k)));
    expect(second.every((d) => !d.allowed && d.policy === 'x{1}')).toBe(true);
    expect(first.map((d) => d.key)).toEqual(keys);
    for (const k of keys) await l.reset(k);
  });

  it('the longest allowed key works; longer keys and lone surrogates are refused clearly', async () => {
    const l = createLimiter({ limit: 1, windowMs: 60_000, store, maxKeyLength: 65_536 });
    expect((await l.consume(`${randomUUID()}${'k'.repeat(65_000)}`)).allowed).toBe(true);
    await expect(l.consume('x'.repeat(65_537))).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(l.consume('bad\ud800')).rejects.toBeInstanceOf(InvalidKeyError);
  });
});


describe.skipIf(skip)('timeouts and a busy process', () => {
  it('a reply that arrived while the event loop was blocked past timeoutMs is used, not reported as STORE_TIMEOUT', async () => {
    const s = new RedisStore({ url: REDIS_URL, prefix, timeoutMs: 50 });
    const rules = compileRules([{ name: 'stall', limit: 5, windowMs: 60_000 }]);
    try {
      expect((await s.decide('stall-warm', rules, 1)).allowed).toBe(true); // connected, script cached
      const pending = s.decide('stall', rules, 1);
      // Let the batch go out (it is flushed from a microtask), then block the loop for 4 timeouts:
      // Redis answers meanwhile, and the timer is long due when the loop turns again.
      for (let i = 0; i < 5; i++) await null;
      const until = Date.now() + 200;
      while (Date.now() < until) {
        // a synchronous stall, like a CPU-bound request handler
      }
      await expect(pending).resolves.toMatchObject({ allowed: true, remaining: 4 });
    } finally {
      await s.close();
    }
  });
});
