/**
 * What the Redis store keeps, per algorithm: the state the Lua reads and writes is the algorithm's
 * codec form, and deciding on a stored state gives exactly the pure step's outcome and next state.
 * Each step below writes the pure step's state into Redis with the codec, lets the store decide,
 * and reads the state back. Plus the sliding log's cost: a decision reads O(log n) entries of the
 * list, never the whole log (watched with MONITOR on this suite's own keys).
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlgorithmDefinition } from '../../../src/core/algorithms/algorithm.js';
import { ALGORITHMS } from '../../../src/core/algorithms/registry.js';
import { slidingLogAlgorithm } from '../../../src/core/algorithms/sliding-log/index.js';
import { manualClock, toMicros, type ManualClock } from '../../../src/core/clock.js';
import { charged } from '../../../src/core/algorithms/step.js';
import { singleDecision } from '../../../src/core/decision.js';
import { compileRule, type Rule } from '../../../src/core/rule.js';
import { RedisStore } from '../../../src/redis.js';
import { baseKey } from '../../../src/stores/redis/keys.js';
import { deletePrefix, REDIS_URL, skipWithoutRedis } from '../../support/redis-server.js';
import { ruleOfAlgorithm } from '../../core/harness.js';

const skip = skipWithoutRedis('redis-state');
const prefix = `sluicestate${randomUUID().slice(0, 8)}:`;
const all = ALGORITHMS as readonly unknown[] as readonly AlgorithmDefinition[];

let clock: ManualClock;
let store: RedisStore;
let raw: Redis;

beforeAll(() => {
  clock = manualClock();
  store = new RedisStore({ url: REDIS_URL, prefix, clock, timeoutMs: 5000 });
  raw = new Redis(REDIS_URL);
});
afterAll(async () => {
  await store?.close();
  raw?.disconnect();
  await deletePrefix(REDIS_URL, prefix);
});

const stateKey = (key: string, rule: Rule) => `${baseKey(prefix, key)}:${rule.id}`;

async function write(a: AlgorithmDefinition, redisKey: string, state: unknown): Promise<void> {
  await raw.del(redisKey);
  if (state === undefined) return;
  const stored = a.codec.encode(state);
  if (a.codec.redisType === 'string') await raw.set(redisKey, stored[0] as Buffer, 'PX', 600_000);
  else if (stored.length > 0) await raw.rpush(redisKey, ...stored);
}

async function read(a: AlgorithmDefinition, redisKey: string): Promise<unknown> {
  if (a.codec.redisType === 'string') {
    const v = await raw.getBuffer(redisKey);
    return v === null ? undefined : a.codec.decode([v]);
  }
  const list = await raw.lrangeBuffer(redisKey, 0, -1);
  return list.length === 0 ? undefined : a.codec.decode(list);
}

describe.skipIf(skip)('the stored state is the codec form and decides like the pure step', () => {
  for (const a of all) {
    it(`${a.name}: outcome and next state equal the pure step's (or charge's), from any stored state`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 8 }),
          fc.array(
            fc.record({
              dtMs: fc.integer({ min: -300, max: 1500 }),
              cost: fc.integer({ min: 0, max: 5 }),
              peek: fc.boolean(),
              // Sometimes a charge of this cost instead (often past the limit).
              charge: fc.option(fc.integer({ min: 0, max: 30 }), { freq: 3 }),
            }),
            { minLength: 1, maxLength: 25 },
          ),
          async (limit, ops) => {
            const rule = ruleOfAlgorithm(a, limit, 1000);
            const key = randomUUID();
            const redisKey = stateKey(key, rule);
            let state: unknown;
            for (const op of ops) {
              clock.advance(op.dtMs);
              const now = toMicros(clock());
              await write(a, redisKey, state);
              if (op.charge !== null) {
                const next = op.charge > 0 ? a.charge(state, now, rule, op.charge) : state;
                const d = await store.charge(key, [rule], op.charge);
                expect(d).toEqual(singleDecision(key, op.charge, charged(a.step(next, now, rule, 0).outcome)));
                const stored = await read(a, redisKey);
                // The memory form keeps the newest limit + 1 units of a sliding log; Redis keeps
                // older entries too (they decide nothing, see slidingLogCharge).
                if (a.name === 'sliding-log' && stored !== undefined) expect((stored as number[]).slice(-(limit + 1))).toEqual((next as number[]).slice(-(limit + 1)));
                else expect(stored).toEqual(next);
                state = next;
                continue;
              }
              const expected = a.step(state, now, rule, op.cost);
              const d = await store.decide(key, [rule], op.cost, op.peek);
              expect(d).toEqual(singleDecision(key, op.cost, expected.outcome));
              if (expected.outcome.allowed && !op.peek && op.cost > 0) state = expected.next;
              expect(await read(a, redisKey)).toEqual(state);
            }
          },
        ),
        { numRuns: 25 },
      );
    });
  }
});

describe.skipIf(skip)('decisions batched into one script call', () => {
  for (const a of all) {
    it(`${a.name}: many decisions on one key in one call (commits, refusals, peeks, time steps) decide like the pure steps in order`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 6 }),
          fc.array(fc.record({ dtUs: fc.integer({ min: -2000, max: 400_000 }), cost: fc.integer({ min: 0, max: 4 }), peek: fc.boolean() }), {
            minLength: 2,
            maxLength: 40,
          }),
          async (limit, ops) => {
            const rule = ruleOfAlgorithm(a, limit, 1000);
            const key = randomUUID();
            // Issued in one tick, so the store sends them together; each carries its own time.
            const pending: Promise<unknown>[] = [];
            const expected: unknown[] = [];
            let state: unknown;
            let now = toMicros(clock());
            for (const op of ops) {
              now += op.dtUs;
              clock.set(now / 1000);
              pending.push(store.decide(key, [rule], op.cost, op.peek));
              const s = a.step(state, now, rule, op.cost);
              expected.push(singleDecision(key, op.cost, s.outcome));
              if (s.outcome.allowed && !op.peek && op.cost > 0) state = s.next;
            }
            expect(await Promise.all(pending)).toEqual(expected);
            expect(await read(a, stateKey(key, rule))).toEqual(state);
          },
        ),
        { numRuns: 25 },
      );
    });
  }
});

describe.skipIf(skip)('the sliding log cost, and state written by earlier versions', () => {
  const rule = compileRule({ algorithm: 'sliding-log', limit: 10_000, windowMs: 10_000 });
  const a = slidingLogAlgorithm as unknown as AlgorithmDefinition;

  /**
   * Run one decision; return it and the commands it sent for its state key (seen by MONITOR).
   * MONITOR is read on a plain socket: ioredis's monitor mode throws "Command queue state error"
   * when other suites' traffic on the shared server floods it (seen under `vitest run test/stores`).
   */
  async function watched(key: string, cost: number): Promise<{ d: unknown; commands: string[] }> {
    const url = new URL(REDIS_URL);
    const socket = net.connect(Number(url.port || 6379), url.hostname);
    const commands: string[] = [];
    const sentinel = `${prefix}sentinel:${randomUUID()}`;
    const target = stateKey(key, rule);
    let buffered = '';
    let onOk: () => void = () => {};
    let onSentinel: () => void = () => {};
    const ok = new Promise<void>((resolve) => (onOk = resolve));
    const done = new Promise<void>((resolve) => (onSentinel = resolve));
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 2);
        if (line === '+OK') onOk();
        // +<time> [<db> <client>] "CMD" "arg1" ...: the keys here hold no quotes or backslashes.
        const args = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
        if (args[1] === target) commands.push(args[0]!.toUpperCase());
        if (args[1] === sentinel) onSentinel();
      }
    });
    try {
      socket.write('MONITOR\r\n');
      await ok;
      const d = await store.decide(key, [rule], cost);
      await raw.get(sentinel);
      await done;
      return { d, commands };
    } finally {
      socket.destroy();
    }
  }

  it('a decision reads O(log n) entries of a 10 000-entry log, never the whole list, and stays exact', async () => {
    const key = randomUUID();
    const redisKey = stateKey(key, rule);
    const t0 = toMicros(clock());
    // 10 000 units 500 µs apart: the window is full, the oldest expires 500 µs from now.
    let state: readonly number[] = Array.from({ length: 10_000 }, (_, i) => t0 - rule.windowUs + (i + 1) * 500);
    await write(a, redisKey, state);
    const bound = 2 * Math.ceil(Math.log2(10_000)) + 4;
    const cases: [string, number, number, boolean][] = [
      // [what, clock step in µs, cost, admitted]
      ['refused at the limit: the unit that must expire is found by binary search', 0, 1, false],
      ['admitted once 5001 units expired: first live entry by binary search, head trimmed', 2_500_500, 1, true],
      ['refused with a large cost: the 2nd live unit must expire first', 0, 5002, false],
    ];
    for (const [what, stepUs, cost, admitted] of cases) {
      clock.set((t0 + stepUs) / 1000);
      const expected = a.step(state, toMicros(clock()), rule, cost);
      expect(expected.outcome.allowed, what).toBe(admitted);
      const { d, commands } = await watched(key, cost);
      expect(d, what).toEqual(singleDecision(key, cost, expected.outcome));
      expect(commands, what).toContain('LINDEX');
      expect(commands, what).not.toContain('LRANGE');
      expect(commands.filter((c) => c === 'LINDEX').length, what).toBeLessThanOrEqual(bound);
      if (admitted) {
        expect(commands, what).toContain('LTRIM');
        state = expected.next as readonly number[];
      }
      expect(await read(a, redisKey), what).toEqual(state);
    }
    expect(await raw.llen(redisKey)).toBe(10_000 - 5001 + 1);
  });

  it('a GCRA key written as decimal text (before the packed form) still decides like the pure step', async () => {
    const rule = compileRule({ limit: 5, windowMs: 1000 });
    const g = ALGORITHMS[0] as unknown as AlgorithmDefinition;
    expect(g.name).toBe('gcra');
    const key = randomUUID();
    const now = toMicros(clock());
    const tat = now + 700_000;
    await raw.set(stateKey(key, rule), String(tat), 'PX', 60_000);
    const expected = g.step(tat, now, rule, 1);
    expect(await store.decide(key, [rule], 1)).toEqual(singleDecision(key, 1, expected.outcome));
    expect(await read(g, stateKey(key, rule))).toEqual(expected.next);
    expect((await raw.getBuffer(stateKey(key, rule)))?.length).toBe(8);
  });

  it('a list written before the running totals is upgraded in place and decides the same', async () => {
    const small = compileRule({ algorithm: 'sliding-log', limit: 5, windowMs: 1000 });
    const key = randomUUID();
    const now = toMicros(clock());
    const log = [now - 900_000, now - 900_000, now - 400_000, now - 1000];
    await raw.rpush(stateKey(key, small), `${now - 900_000}:2`, `${now - 400_000}:1`, `${now - 1000}:1`);
    await raw.pexpire(stateKey(key, small), 60_000);
    const expected = a.step(log, now, small, 2);
    expect(await store.decide(key, [small], 2)).toEqual(singleDecision(key, 2, expected.outcome));
    expect(await raw.lrangeBuffer(stateKey(key, small), 0, -1)).toEqual(
      slidingLogAlgorithm.codec.encode([now - 900_000, now - 900_000, now - 400_000, now - 1000]),
    );
    expect(await raw.pttl(stateKey(key, small))).toBeGreaterThan(50_000);
  });
});
