/**
 * RedisStore decides exactly like MemoryStore: the same sequences run against both with one
 * manual clock (the Redis scripts get the time in ARGV) must give identical decisions, field by
 * field. Runs against the shared Redis (REDIS_URL) under a random prefix.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileConcurrencyRule } from '../../src/core/algorithms/concurrency/index.js';
import { manualClock, type ManualClock } from '../../src/core/clock.js';
import { compileRules, type LimitOptions, type Rule } from '../../src/core/rule.js';
import { createLimiter, MemoryStore } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { deletePrefix, REDIS_URL, skipWithoutRedis } from '../support/redis-server.js';

const skip = skipWithoutRedis('redis-conformance');
const prefix = `sluicetest${randomUUID().slice(0, 8)}:`;

let clock: ManualClock;
let redis: RedisStore;
/** A second store, on its own prefix, whose decisions always go out in a batch (decide.lua). */
let batched: RedisStore;
let raw: Redis;

beforeAll(() => {
  clock = manualClock();
  // A generous timeout: these specs are about decisions, and the shared 2-core machine can stall.
  redis = new RedisStore({ url: REDIS_URL, prefix, clock, timeoutMs: 5000 });
  batched = new RedisStore({ url: REDIS_URL, prefix: `${prefix}batch:`, clock, timeoutMs: 5000 });
  raw = new Redis(REDIS_URL);
});
afterAll(async () => {
  await redis?.close();
  await batched?.close();
  raw?.disconnect();
  await deletePrefix(REDIS_URL, prefix);
});

const ALGORITHMS = ['gcra', 'fixed-window', 'sliding-window', 'sliding-log', 'quota'] as const;

/** One step of a replayed sequence. */
type Op =
  | { kind: 'consume'; key: number; cost: number }
  | { kind: 'peek'; key: number; cost: number }
  | { kind: 'charge'; key: number; cost: number }
  | { kind: 'reset'; key: number }
  | { kind: 'advance'; ms: number };

function opArb(maxCost: number, windowMs: number): fc.Arbitrary<Op> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('consume' as const), key: fc.nat(2), cost: fc.nat(maxCost) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('peek' as const), key: fc.nat(2), cost: fc.nat(maxCost) }) },
    // Charges after the fact (cost from the response), often past the limit: overdrafts.
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('charge' as const), key: fc.nat(2), cost: fc.oneof(fc.nat(maxCost), fc.nat(5 * maxCost)) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('reset' as const), key: fc.nat(2) }) },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('advance' as const),
        // Sub-millisecond steps, steps to just before/after window edges, and long jumps.
        ms: fc.oneof(
          fc.integer({ min: 0, max: 5 }).map((n) => n / 7),
          fc.integer({ min: 1, max: windowMs }),
          fc.constantFrom(windowMs - 1, windowMs, windowMs + 1, 2 * windowMs, windowMs / 2),
        ),
      }),
    },
    {
      weight: 1,
      // The clock stepping back (NTP, a failover to a Redis with a skewed clock): the stores must
      // agree there too (no window restarted, the sliding log kept sorted).
      arbitrary: fc.record({
        kind: fc.constant('advance' as const),
        ms: fc.oneof(fc.integer({ min: -windowMs, max: -1 }), fc.constant(-2 * windowMs - 1)),
      }),
    },
  );
}

/** Replay `ops` on both stores; every decision must be identical. */
async function replay(limits: readonly LimitOptions[], ops: readonly Op[]): Promise<void> {
  const rules = compileRules(limits);
  const memory = new MemoryStore({ clock });
  const run = randomUUID();
  const keys = [`${run}:a`, `${run}:{b}`, `${run}}{:c%`];
  for (const op of ops) {
    if (op.kind === 'advance') {
      clock.advance(op.ms);
    } else if (op.kind === 'reset') {
      await redis.reset(keys[op.key] as string, rules);
      await batched.reset(keys[op.key] as string, rules);
      await memory.reset(keys[op.key] as string, rules);
    } else if (op.kind === 'charge') {
      const key = keys[op.key] as string;
      // Awaited alone (a lone charge must not take the single-decision script: it only decides),
      // and batched with a peek at another key, so both stores keep the same state.
      const fromRedis = await redis.charge(key, rules, op.cost);
      const [fromBatch] = await Promise.all([batched.charge(key, rules, op.cost), batched.decide(`${run}:other`, rules, 1, true)]);
      const fromMemory = await memory.charge(key, rules, op.cost);
      expect(fromRedis).toEqual(fromMemory);
      expect(fromBatch).toEqual(fromMemory);
    } else {
      const peek = op.kind === 'peek';
      const key = keys[op.key] as string;
      // Awaited alone: with one rule, the algorithm's single-decision script (single.lua).
      const fromRedis = await redis.decide(key, rules, op.cost, peek);
      // Issued with a peek at another key, so the two share one call of the batch script.
      const [fromBatch] = await Promise.all([batched.decide(key, rules, op.cost, peek), batched.decide(`${run}:other`, rules, 1, true)]);
      const fromMemory = await memory.decide(key, rules, op.cost, peek);
      expect(fromRedis).toEqual(fromMemory);
      expect(fromBatch).toEqual(fromMemory);
    }
  }
}

describe.skipIf(skip)('RedisStore decides exactly like MemoryStore (shared manual clock)', () => {
  for (const algorithm of ALGORITHMS) {
    it(`${algorithm}: random sequences of consume / peek / charge / reset / time steps`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 8 }),
          fc.constantFrom(1000, 60_000, 7),
          fc.integer({ min: 1, max: 3 }),
          fc.array(opArb(10, 1000), { minLength: 10, maxLength: 60 }),
          async (limit, windowMs, burstFactor, ops) => {
            const burst = algorithm === 'gcra' ? { burst: limit * burstFactor } : {};
            await replay([{ algorithm, limit, windowMs, ...burst }], ops);
          },
        ),
        { numRuns: 60 },
      );
    });
  }

  it('quota periods: hourly / daily / weekly / monthly, calendar or first-api-call, billing anchors on the 29th-31st, month ends and leap days', async () => {
    const HOUR = 3_600_000;
    const DAY = 24 * HOUR;
    // Anchors: the days that clamp (29th-31st, Feb 29 of a leap year), at odd times of day.
    const anchorArb = fc.oneof(
      fc.constant(undefined),
      fc
        .record({ y: fc.integer({ min: 2000, max: 2025 }), m: fc.integer({ min: 0, max: 11 }), d: fc.integer({ min: 27, max: 31 }), ms: fc.integer({ min: 0, max: DAY - 1 }) })
        .map(({ y, m, d, ms }) => Date.UTC(y, m, Math.min(d, new Date(Date.UTC(y, m + 1, 0)).getUTCDate())) + ms),
    );
    // Starts around month ends, including February of leap years (2028) and of 2100 (not leap).
    const startArb = fc
      .record({ y: fc.constantFrom(2027, 2028, 2100), m: fc.integer({ min: 0, max: 11 }), back: fc.integer({ min: 0, max: 3 * DAY }) })
      .map(({ y, m, back }) => Date.UTC(y, m + 1, 1) - back);
    const advance = fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.oneof(fc.integer({ min: 1, max: 2 * HOUR }), fc.integer({ min: 1, max: 3 * DAY }), fc.integer({ min: 20 * DAY, max: 40 * DAY }), fc.constant(-HOUR)),
    });
    const consume = fc.record({ kind: fc.constantFrom('consume' as const, 'peek' as const, 'charge' as const), key: fc.nat(2), cost: fc.nat(4) });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('hourly', 'daily', 'weekly', 'monthly') as fc.Arbitrary<'hourly' | 'daily' | 'weekly' | 'monthly'>,
        fc.boolean(),
        anchorArb,
        startArb,
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.oneof({ weight: 3, arbitrary: consume }, { weight: 2, arbitrary: advance }), { minLength: 10, maxLength: 50 }),
        async (period, calendar, anchor, start, limit, ops) => {
          clock.set(start);
          const mode = calendar ? { quotaAnchorMode: 'calendar' as const, ...(anchor === undefined ? {} : { anchor }) } : {};
          await replay([{ algorithm: 'quota', period, limit, ...mode }], ops);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('several rules at once: same decisions, including which rule refused and peeked outcomes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.shuffledSubarray([...ALGORITHMS], { minLength: 2, maxLength: 4 }),
        fc.array(opArb(6, 1000), { minLength: 10, maxLength: 60 }),
        async (algos, ops) => {
          const limits = algos.map((algorithm, i) => ({
            name: `r${i}`,
            algorithm,
            limit: 2 + 2 * i,
            windowMs: 1000 * (i + 1),
          }));
          await replay(limits, ops);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('concurrency leases: acquire, expiry and release match', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('acquire' as const), cost: fc.nat(4) }),
            fc.record({ kind: fc.constant('release' as const), which: fc.nat(10) }),
            fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 1500 }) }),
          ),
          { minLength: 5, maxLength: 40 },
        ),
        async (ops) => {
          const rule = compileConcurrencyRule({ limit: 3, leaseMs: 1000, name: 'jobs' });
          const memory = new MemoryStore({ clock });
          const key = `lease:${randomUUID()}`;
          const leases: string[] = [];
          for (const op of ops) {
            if (op.kind === 'advance') clock.advance(op.ms);
            else if (op.kind === 'release') {
              const id = leases[op.which % Math.max(1, leases.length)] ?? 'none';
              await redis.release(key, rule, id);
              await memory.release(key, rule, id);
            } else {
              const id = randomUUID();
              leases.push(id);
              const a = await redis.acquire(key, rule, op.cost, id);
              const b = await memory.acquire(key, rule, op.cost, id);
              expect(a).toEqual(b);
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe.skipIf(skip)('RedisStore edges (manual clock)', () => {
  const limiter = (o: LimitOptions | { limits: LimitOptions[] }) => createLimiter({ ...(o as LimitOptions), store: redis });

  it('a cost larger than the limit is refused with retryAfterMs Infinity (sent as -1 from Lua)', async () => {
    for (const algorithm of ALGORITHMS) {
      const l = limiter({ algorithm, limit: 5, windowMs: 1000 });
      const d = await l.consume(`big:${randomUUID()}`, 6);
      expect(d.allowed).toBe(false);
      expect(d.retryAfterMs).toBe(Infinity);
    }
  });

  it('cost larger than what remains is refused and consumes nothing', async () => {
    const l = limiter({ algorithm: 'fixed-window', limit: 5, windowMs: 1000 });
    const key = `rem:${randomUUID()}`;
    expect((await l.consume(key, 4)).remaining).toBe(1);
    const refused = await l.consume(key, 2);
    expect(refused.allowed).toBe(false);
    expect((await l.consume(key, 1)).allowed).toBe(true);
  });

  it('fixed window: full at the last microsecond of a window, empty at the next window', async () => {
    clock.set(Date.UTC(2026, 0, 2));
    const l = limiter({ algorithm: 'fixed-window', limit: 2, windowMs: 1000 });
    const key = `edge:${randomUUID()}`;
    clock.advance(999.999);
    expect((await l.consume(key, 2)).allowed).toBe(true);
    const refused = await l.consume(key);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBe(0.001);
    clock.advance(0.001);
    expect((await l.consume(key)).remaining).toBe(1);
  });

  it('several limits are all or nothing: a refusal by one consumes from none', async () => {
    const l = limiter({
      limits: [
        { name: 'per-second', limit: 2, windowMs: 1000 },
        { name: 'per-hour', limit: 3, windowMs: 3_600_000, algorithm: 'sliding-log' },
      ],
    });
    const key = `multi:${randomUUID()}`;
    await l.consume(key);
    await l.consume(key);
    const refused = await l.consume(key);
    expect(refused.allowed).toBe(false);
    expect(refused.policy).toBe('per-second');
    // per-hour was not charged for the refused request: it still has 1 left.
    expect(refused.policies[1]).toMatchObject({ policy: 'per-hour', allowed: true, remaining: 1 });
    clock.advance(1000);
    expect((await l.consume(key)).allowed).toBe(true);
    const d = await l.consume(key);
    expect(d.allowed).toBe(false);
    expect(d.policy).toBe('per-hour');
  });

  it('peek and cost 0 write nothing to Redis', async () => {
    const rules: Rule[] = compileRules(ALGORITHMS.map((algorithm) => ({ name: algorithm, algorithm, limit: 3, windowMs: 1000 })));
    const key = `peek:${randomUUID()}`;
    await redis.decide(key, rules, 1, true);
    await redis.decide(key, rules, 0, false);
    expect(await raw.keys(`${prefix}{peek:*`)).toEqual([]);
    await redis.decide(key, rules, 1, false);
    expect((await raw.keys(`${prefix}{${key}}:*`)).sort()).toEqual(rules.map((r) => `${prefix}{${key}}:${r.id}`).sort());
  });

  it('reset deletes the state of every rule', async () => {
    const rules = compileRules([
      { name: 'a', limit: 1, windowMs: 60_000 },
      { name: 'b', limit: 1, windowMs: 60_000, algorithm: 'sliding-log' },
    ]);
    const key = `reset:${randomUUID()}`;
    expect((await redis.decide(key, rules, 1)).allowed).toBe(true);
    expect((await redis.decide(key, rules, 1)).allowed).toBe(false);
    await redis.reset(key, rules);
    expect(await raw.exists(...rules.map((r) => `${prefix}{${key}}:${r.id}`))).toBe(0);
    expect((await redis.decide(key, rules, 1)).allowed).toBe(true);
  });

  it('a clock stepping back: no window restarts, the sliding log stays sorted (same as MemoryStore)', async () => {
    for (const algorithm of ALGORITHMS) {
      await replay([{ algorithm, limit: 4, windowMs: 1000 }], [
        { kind: 'advance', ms: 900 },
        { kind: 'consume', key: 0, cost: 2 },
        { kind: 'advance', ms: 200 },
        { kind: 'consume', key: 0, cost: 1 },
        { kind: 'advance', ms: -400 },
        { kind: 'consume', key: 0, cost: 1 },
        { kind: 'peek', key: 0, cost: 1 },
        { kind: 'advance', ms: 1500 },
        { kind: 'consume', key: 0, cost: 2 },
        { kind: 'consume', key: 0, cost: 1 },
      ]);
    }
  });

  it('a refused lease waits until enough leases expire for its cost, not just the earliest', async () => {
    const rule = compileConcurrencyRule({ limit: 3, leaseMs: 1000, name: 'slots' });
    const memory = new MemoryStore({ clock });
    const key = `leasewait:${randomUUID()}`;
    const decisions = [];
    for (const [advance, cost] of [[0, 1], [100, 2], [50, 2]] as const) {
      clock.advance(advance);
      const id = randomUUID();
      const a = await redis.acquire(key, rule, cost, id);
      expect(a).toEqual(await memory.acquire(key, rule, cost, id));
      decisions.push(a);
    }
    // At +150 ms: 3 units held (1 expiring at +1000, 2 at +1100); 2 more need both gone.
    const refused = decisions[2];
    expect(refused).toMatchObject({ allowed: false, retryAfterMs: 950 });
  });

  it('absurd charges: a 10-year window charged the largest safe cost decides the same (the GCRA TAT capped 63 years ahead)', async () => {
    for (const algorithm of ALGORITHMS) {
      const limits = [{ algorithm, limit: 2, windowMs: 315_576_000_000 }];
      const ops: Op[] = [
        { kind: 'consume', key: 0, cost: 1 },
        { kind: 'charge', key: 0, cost: Number.MAX_SAFE_INTEGER },
        { kind: 'charge', key: 0, cost: Number.MAX_SAFE_INTEGER },
        { kind: 'consume', key: 0, cost: 1 },
        { kind: 'advance', ms: 86_400_000 },
        { kind: 'peek', key: 0, cost: 1 },
        { kind: 'charge', key: 0, cost: 3 },
      ];
      await replay(limits, ops);
    }
  });

  it('huge windows keep exact arithmetic (10-year window, gcra and sliding log)', async () => {
    await replay([{ algorithm: 'gcra', limit: 1000, windowMs: 315_576_000_000, burst: 7 }], [
      { kind: 'consume', key: 0, cost: 7 },
      { kind: 'advance', ms: 86_400_000 },
      { kind: 'consume', key: 0, cost: 1 },
      { kind: 'peek', key: 0, cost: 8 },
    ]);
    await replay([{ algorithm: 'sliding-log', limit: 3, windowMs: 315_576_000_000 }], [
      { kind: 'consume', key: 0, cost: 2 },
      { kind: 'advance', ms: 315_576_000_000 - 1 },
      { kind: 'consume', key: 0, cost: 2 },
      { kind: 'advance', ms: 1 },
      { kind: 'consume', key: 0, cost: 2 },
    ]);
  });
});
