/**
 * RedisStore.charge under concurrency: many callers on two RedisStore instances (two connections,
 * their batches interleaving in Redis) admit with a reserve of 1 and then charge the rest, as a
 * gateway charging a response's real cost does. With time frozen (nothing refills), for every
 * algorithm: no unit is lost or counted twice, no admission happens once the units known to be
 * counted reach the limit, and the overdraft stays within the documented bound
 * (admitted requests x largest charge). Runs against the shared Redis under a random prefix.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlgorithmDefinition } from '../../src/core/algorithms/algorithm.js';
import { findAlgorithm } from '../../src/core/algorithms/registry.js';
import { manualClock, toMicros } from '../../src/core/clock.js';
import { limiterOn } from '../../src/core/limiter.js';
import type { Rule } from '../../src/core/rule.js';
import { RedisStore } from '../../src/redis.js';
import { baseKey } from '../../src/stores/redis/keys.js';
import { deletePrefix, REDIS_URL, skipWithoutRedis } from '../support/redis-server.js';

const skip = skipWithoutRedis('redis-charge');
const prefix = `sluicecharge${randomUUID().slice(0, 8)}:`;
// Frozen: the scripts take this time from ARGV, so nothing refills during the run.
const clock = manualClock();
let stores: RedisStore[] = [];
let raw: Redis;

beforeAll(() => {
  stores = [0, 1].map(() => new RedisStore({ url: REDIS_URL, prefix, clock, timeoutMs: 5000 }));
  raw = new Redis(REDIS_URL);
});
afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  raw?.disconnect();
  await deletePrefix(REDIS_URL, prefix);
});

/** Units the stored state holds (time frozen at `now`), read back with the algorithm's codec. */
async function storedUnits(rule: Rule, key: string, now: number): Promise<number> {
  const a = findAlgorithm(rule.algorithm) as AlgorithmDefinition;
  const redisKey = `${baseKey(prefix, key)}:${rule.id}`;
  const stored = a.codec.redisType === 'string' ? [(await raw.getBuffer(redisKey)) as Buffer] : await raw.lrangeBuffer(redisKey, 0, -1);
  const s = a.codec.decode(stored) as never;
  switch (rule.algorithm) {
    case 'gcra':
      return ((s as number) - now) / rule.intervalUs;
    case 'sliding-log':
      return (s as number[]).length;
    case 'sliding-window':
      return (s as { curr: number }).curr;
    default:
      return (s as { count: number }).count;
  }
}

const LIMIT = 60;
const MAX_CHARGE = 8;
const CALLERS = 40; // per store
const ROUNDS = 5;

describe.skipIf(skip)('admit-then-charge from two RedisStore instances at once', () => {
  for (const algorithm of ['gcra', 'fixed-window', 'sliding-window', 'sliding-log', 'quota'] as const) {
    it(`${algorithm}: a free-for-all of ${2 * CALLERS} callers: every unit counted once, nothing admitted once the limit is known reached, overdraft <= admitted x largest charge`, async () => {
      const limiters = stores.map((store) => limiterOn(store, { algorithm, limit: LIMIT, windowMs: 3_600_000 }));
      const rule = limiters[0]!.rules[0] as Rule;
      const key = `llm:${randomUUID()}`;
      let admitted = 0;
      let charged = 0;
      // Units whose admission or charge has been answered: the stored count is at least this.
      let known = 0;
      const lateAdmissions: number[] = [];
      const caller = async (n: number) => {
        const limiter = limiters[n % 2]!;
        // Staggered starts, so admissions and charges tend to interleave.
        await new Promise((r) => setTimeout(r, n % 25));
        for (let round = 0; round < ROUNDS; round++) {
          const before = known;
          const d = await limiter.consume(key, 1);
          if (!d.allowed) {
            expect(d.remaining).toBe(0);
            continue;
          }
          admitted++;
          known++;
          // Admitted although the limit was already known to be reached when it was asked.
          if (before + 1 > LIMIT) lateAdmissions.push(before);
          // The response arrives a little later; its real cost is known then.
          await new Promise((r) => setTimeout(r, (n * 7 + round) % 4));
          const cost = (n + round) % (MAX_CHARGE + 1);
          const c = await limiter.charge(key, cost);
          expect(c).toMatchObject({ allowed: true, retryAfterMs: 0, cost });
          expect(c.remaining).toBeGreaterThanOrEqual(0);
          charged += cost;
          known += cost;
        }
      };
      await Promise.all(Array.from({ length: 2 * CALLERS }, (_, n) => caller(n)));

      expect(lateAdmissions).toEqual([]);
      expect(admitted).toBeGreaterThan(0);
      expect(admitted).toBeLessThanOrEqual(LIMIT);
      const total = await storedUnits(rule, key, toMicros(clock()));
      expect(total).toBe(admitted + charged);
      // The run did go into overdraft, and no deeper than the bound.
      expect(total).toBeGreaterThan(LIMIT);
      expect(total - LIMIT).toBeLessThanOrEqual(admitted * MAX_CHARGE);
      // Overdrawn: refused from both stores, nothing remaining.
      for (const l of limiters) expect(await l.consume(key)).toMatchObject({ allowed: false, remaining: 0 });
    }, 60_000);

    it(`${algorithm}: in waves (each wave's consumes race the previous wave's charges): admitted after charges while budget remains, refused once overdrawn, same bounds`, async () => {
      const limiters = stores.map((store) => limiterOn(store, { algorithm, limit: LIMIT, windowMs: 3_600_000 }));
      const rule = limiters[0]!.rules[0] as Rule;
      const key = `llm:${randomUUID()}`;
      // The charge of each admission by the wave it was admitted in: small at first, so waves 1
      // and 2 are admitted after charges were answered; then deep enough to overdraw.
      const costOf = (wave: number) => [1, 1][wave] ?? MAX_CHARGE;
      const PER_WAVE = 8;
      let admitted = 0;
      let charged = 0;
      let pending: { limiter: (typeof limiters)[number]; cost: number }[] = [];
      const refusedByWave: number[] = [];
      for (let wave = 0; wave < 6; wave++) {
        const charges = pending.map(({ limiter, cost }) => limiter.charge(key, cost).then(() => (charged += cost)));
        const consumes = Array.from({ length: PER_WAVE }, (_, i) => limiters[i % 2]!.consume(key));
        const [decisions] = await Promise.all([Promise.all(consumes), Promise.all(charges)]);
        pending = [];
        decisions.forEach((d, i) => {
          if (d.allowed) pending.push({ limiter: limiters[i % 2]!, cost: costOf(wave) });
        });
        admitted += pending.length;
        refusedByWave.push(PER_WAVE - pending.length);
      }
      await Promise.all(pending.map(({ limiter, cost }) => limiter.charge(key, cost).then(() => (charged += cost))));
      // Waves 0-2 fit whatever the order (3 x 8 admitted + 2 x 8 charged = 40 <= 60): all admitted,
      // waves 1 and 2 after charges were answered. Wave 3 races 64 units of charges; from wave 4
      // on the key is known to be overdrawn (at least 104 units): all refused.
      expect(refusedByWave.slice(0, 3)).toEqual([0, 0, 0]);
      expect(refusedByWave.slice(4)).toEqual([PER_WAVE, PER_WAVE]);
      const total = await storedUnits(rule, key, toMicros(clock()));
      expect(total).toBe(admitted + charged);
      expect(total).toBeGreaterThan(LIMIT);
      expect(total - LIMIT).toBeLessThanOrEqual(admitted * MAX_CHARGE);
    }, 60_000);
  }
});
