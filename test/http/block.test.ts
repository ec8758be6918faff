/**
 * Block duration (penalty box): once a policy with `blockDurationMinutes` / `blockDurationSeconds`
 * refuses a key, the key stays refused for that long, shown in Retry-After and the decision; with
 * `blockEscalation`, each new block of a repeat offender lasts longer, capped, shared on Redis.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/core/clock.js';
import { SluiceConfigError, StoreError } from '../../src/core/errors.js';
import type { Store } from '../../src/core/store.js';
import { createPolicyEngine, type PolicyEngine, type PolicyEvent } from '../../src/http/engine.js';
import type { HttpRequestInfo } from '../../src/http/request.js';
import { RedisStore } from '../../src/redis.js';
import { MemoryStore } from '../../src/stores/memory-store.js';
import { SwitchableStore } from '../support/switchable-store.js';
import { deletePrefix, REDIS_URL, skipWithoutRedis } from '../support/redis-server.js';

const skipRedis = skipWithoutRedis('block');
/** The configuration error of an engine with one policy `p` of these options (fails the spec if none). */
function configErrorOf(options: object): SluiceConfigError {
  try {
    createPolicyEngine({ policies: [{ name: 'p', ...options }] });
  } catch (e) {
    expect(e, JSON.stringify(options)).toBeInstanceOf(SluiceConfigError);
    return e as SluiceConfigError;
  }
  throw new Error(`no configuration error for ${JSON.stringify(options)}`);
}

const req = (ip = '127.0.0.1'): HttpRequestInfo => ({ method: 'GET', path: '/r', headers: {}, remoteAddress: ip });

describe('blockDuration', () => {
  it('a refused key stays refused for the block duration even when its limit has room again', async () => {
    const clock = manualClock();
    const engine = createPolicyEngine({ clock, logger: false, policies: [{ name: 'p', requestsAllowed: 2, timeWindowSeconds: 1, blockDurationSeconds: 60 }] });
    expect((await engine.check(req())).action).toBe('allow');
    expect((await engine.check(req())).action).toBe('allow');
    const refused = await engine.check(req());
    expect(refused.status).toBe(429);
    expect(refused.reason).toBe('rate-limited');
    expect(refused.headers['retry-after']).toBe('60');
    expect(refused.decision?.retryAfterMs).toBe(60_000);
    clock.advance(2000); // the per-second limit is full again
    const blocked = await engine.check(req());
    expect(blocked.status).toBe(429);
    expect(blocked.reason).toBe('penalty');
    expect(blocked.headers['retry-after']).toBe('58');
    expect(JSON.parse(blocked.body as string).detail).toMatch(/^Rate limit exceeded: blocked by "p" until .* after an earlier refusal$/);
    // Other keys are not blocked.
    expect((await engine.check(req('10.0.0.2'))).action).toBe('allow');
    clock.advance(58_000);
    expect((await engine.check(req())).action).toBe('allow');
  });

  it('a blocked key gets the rate-limit headers of its headerMode, like any refusal (r=0 until the block ends)', async () => {
    const clock = manualClock();
    const engine = createPolicyEngine({ clock, logger: false, policies: [{ name: 'p', requestsAllowed: 1, timeWindowSeconds: 1, blockDurationSeconds: 60, headerMode: 'ietf' }] });
    expect((await engine.check(req())).action).toBe('allow');
    expect((await engine.check(req())).status).toBe(429);
    clock.advance(2000);
    const blocked = await engine.check(req());
    expect(blocked.reason).toBe('penalty');
    expect(blocked.headers['retry-after']).toBe('58');
    expect(blocked.headers['ratelimit']).toBe('"p";r=0;t=58');
    expect(blocked.headers['ratelimit-policy']).toBe('"p";q=1;w=1');
  });

  it('without a refusal nothing is blocked; a wait longer than the block keeps the longer Retry-After', async () => {
    const clock = manualClock();
    const engine = createPolicyEngine({ clock, logger: false, policies: [{ name: 'p', requestsAllowed: 1, timeWindowMinutes: 10, blockDurationSeconds: 30, algorithm: 'fixed-window' }] });
    expect((await engine.check(req())).action).toBe('allow');
    const refused = await engine.check(req());
    expect(Number(refused.headers['retry-after'])).toBe(600);
  });

  it('bad block options are configuration errors naming the option', () => {
    const bad: [object, string][] = [
      [{ requestsAllowed: 1, timeWindowMinutes: 1, blockDurationMinutes: 0 }, 'p.blockDurationMinutes'],
      [{ requestsAllowed: 1, timeWindowMinutes: 1, blockDurationSeconds: 'long' }, 'p.blockDurationSeconds'],
      [{ requestsAllowed: 1, timeWindowMinutes: 1, blockDurationMinutes: 1, blockDurationSeconds: 60 }, 'p.blockDurationSeconds'],
      [{ failedAuth: { threshold: 3 }, blockDurationMinutes: 1 }, 'p.blockDurationMinutes'],
    ];
    for (const [options, field] of bad) expect(configErrorOf(options).field, JSON.stringify(options)).toBe(field);
  });
});

describe('blockDuration with mode: async (a remote store counts in the background)', () => {
  it('the refusal found in the background starts the block: the key stays refused for the block, not just the retry time', async () => {
    const clock = manualClock();
    const store = new SwitchableStore(); // a remote store: no synchronous decisions, so async is really async
    Object.assign(store, { inner: new MemoryStore({ clock }) });
    const engine = createPolicyEngine({ clock, store, logger: false, policies: [{ name: 'p', requestsAllowed: 1, timeWindowSeconds: 1, mode: 'async', blockDurationSeconds: 60 }] });
    const settle = () => new Promise((r) => setTimeout(r, 10));
    expect((await engine.check(req())).action).toBe('allow');
    await settle();
    expect((await engine.check(req())).action).toBe('allow'); // over the limit: found in the background
    await settle();
    expect((await engine.check(req())).status).toBe(429);
    clock.advance(2_000); // the limit has room again; the 60 s block has not ended
    const blocked = await engine.check(req());
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBe(58);
    clock.advance(58_000);
    expect((await engine.check(req())).action).toBe('allow');
  });
});

describe('blockEscalation (repeat offenders)', () => {
  /** An engine whose 1-per-second policy blocks for 60 s, doubling up to 3 min, forgotten after 10 min. */
  function escalating(clock = manualClock(), store?: Store) {
    const events: PolicyEvent[] = [];
    const engine = createPolicyEngine({
      clock,
      logger: false,
      ...(store !== undefined ? { store } : {}),
      onEvent: (e) => events.push(e),
      policies: [{ name: 'p', requestsAllowed: 1, timeWindowSeconds: 1, blockDurationSeconds: 60, blockEscalation: { multiplier: 2, maxBlockMinutes: 3, resetAfterMinutes: 10 }, headerMode: 'ietf' }],
    });
    return { engine, clock, events };
  }

  /** Use up the limit and get refused: the refusal starts the next block; returns its Retry-After (s). */
  async function offend(engine: PolicyEngine, ip = '127.0.0.1'): Promise<number> {
    expect((await engine.check(req(ip))).action).toBe('allow');
    const refused = await engine.check(req(ip));
    expect(refused.status).toBe(429);
    expect(refused.reason).toBe('rate-limited');
    expect(refused.decision?.retryAfterMs).toBe(Number(refused.headers['retry-after']) * 1000);
    return Number(refused.headers['retry-after']);
  }

  it('each new block within the reset period lasts twice as long, capped: 60 s, 120 s, 180 s, 180 s', async () => {
    const { engine, clock, events } = escalating();
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) {
      const length = await offend(engine);
      seen.push(length);
      clock.advance(length * 1000); // the block ends; the next offence comes at once
    }
    expect(seen).toEqual([60, 120, 180, 180]);
    // Each block start is an event carrying its length (what analytics and alerts see).
    expect(events.filter((e) => e.type === 'block-started').map((e) => [e.policy, e.key, e.retryAfterMs])).toEqual(seen.map((s) => ['p', 'ip:127.0.0.1', s * 1000]));
  });

  it('a blocked key shows the escalated time left in Retry-After, the IETF header, its decision and its penalty event', async () => {
    const { engine, clock, events } = escalating();
    clock.advance((await offend(engine)) * 1000);
    expect(await offend(engine)).toBe(120);
    clock.advance(30_000);
    const blocked = await engine.check(req());
    expect(blocked.reason).toBe('penalty');
    expect(blocked.headers['retry-after']).toBe('90');
    expect(blocked.headers['ratelimit']).toBe('"p";r=0;t=90');
    expect(blocked.headers['ratelimit-policy']).toBe('"p";q=1;w=1');
    expect(blocked.decision?.retryAfterMs).toBe(90_000);
    expect(events.at(-1)).toMatchObject({ type: 'penalty', policy: 'p', retryAfterMs: 90_000 });
    // Other keys start at the first length.
    expect(await offend(engine, '10.0.0.2')).toBe(60);
  });

  it('a key with no new block for the reset period after its last block is forgotten: back to the first length', async () => {
    const { engine, clock } = escalating();
    clock.advance((await offend(engine)) * 1000);
    clock.advance((await offend(engine)) * 1000); // 120 s
    clock.advance(10 * 60_000 - 1); // just inside the reset period: still a repeat offender
    expect(await offend(engine)).toBe(180);
    clock.advance(180_000 + 10 * 60_000); // a whole reset period after that block ended
    expect(await offend(engine)).toBe(60);
  });

  it('defaults: multiplier 2, at most a day, forgotten after a day', async () => {
    const clock = manualClock();
    const engine = createPolicyEngine({ clock, logger: false, policies: [{ name: 'p', requestsAllowed: 1, timeWindowSeconds: 1, blockDurationMinutes: 400, blockEscalation: {} }] });
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const length = await offend(engine);
      seen.push(length / 60);
      clock.advance(length * 1000);
    }
    expect(seen).toEqual([400, 800, 1440]);
    clock.advance(1440 * 60_000);
    expect(await offend(engine)).toBe(400 * 60);
  });

  it('two RedisStore instances on one Redis (two gateway processes) escalate one shared history exactly', async (ctx) => {
    if (skipRedis) ctx.skip();
    const clock = manualClock(Date.UTC(2026, 0, 1) + Math.floor(Math.random() * 1e9));
    const prefix = `sluiceblock${randomUUID().slice(0, 8)}:`;
    const stores = [0, 1].map(() => new RedisStore({ url: REDIS_URL, prefix, clock, timeoutMs: 5000 }));
    try {
      const [a, b] = stores.map((s) => escalating(clock, s)) as [ReturnType<typeof escalating>, ReturnType<typeof escalating>];
      // Process A blocks the key for 60 s; process B sees the block.
      expect(await offend(a.engine)).toBe(60);
      clock.advance(20_000);
      expect((await b.engine.check(req())).headers['retry-after']).toBe('40');
      clock.advance(40_000);
      // The next offence, seen by B, is the second block (120 s) of the shared history; A sees it.
      expect(await offend(b.engine)).toBe(120);
      clock.advance(100_000);
      expect((await a.engine.check(req())).headers['retry-after']).toBe('20');
      clock.advance(20_000);
      // Both refuse the same request burst at once: one block starts (180 s), both show it.
      expect((await a.engine.check(req())).action).toBe('allow');
      const [ra, rb] = await Promise.all([a.engine.check(req()), b.engine.check(req())]);
      expect([ra.headers['retry-after'], rb.headers['retry-after']]).toEqual(['180', '180']);
      expect([...a.events, ...b.events].filter((e) => e.type === 'block-started').map((e) => e.retryAfterMs as number).sort((x, y) => x - y)).toEqual([60_000, 120_000, 180_000]);
    } finally {
      for (const s of stores) await s.close();
      await deletePrefix(REDIS_URL, prefix);
    }
  });

  it.for(['memory', 'Redis'])('%s: after a reload lengthens the block duration, a repeat offence is blocked at least the new first length', async (kind, ctx) => {
    if (kind === 'Redis' && skipRedis) ctx.skip();
    const clock = manualClock(Date.UTC(2026, 0, 1) + Math.floor(Math.random() * 1e9));
    const prefix = `sluiceblockreload${randomUUID().slice(0, 8)}:`;
    const store: Store = kind === 'Redis' ? new RedisStore({ url: REDIS_URL, prefix, clock, timeoutMs: 5000 }) : new MemoryStore({ clock });
    const engineWith = (blockDurationSeconds: number) =>
      createPolicyEngine({ clock, store, logger: false, policies: [{ name: 'p', requestsAllowed: 1, timeWindowSeconds: 1, blockDurationSeconds, blockEscalation: {} }] });
    try {
      expect(await offend(engineWith(60))).toBe(60);
      clock.advance(60_000);
      // The reloaded config starts blocks at an hour: the stored 60 s block doubled (120 s) is shorter.
      expect(await offend(engineWith(3600))).toBe(3600);
    } finally {
      await store.close();
      if (kind === 'Redis') await deletePrefix(REDIS_URL, prefix);
    }
  });

  it('a store failure while starting the block keeps the plain refusal and reports the request id and path', async () => {
    // A store that answers the block's status (a peek) and the policy's own rule but fails to start
    // the block (an outage between the refusal and the block's entry).
    const inner = new MemoryStore();
    const store: Store = {
      decide: (key, rules, cost, peek) =>
        rules.some((r) => r.algorithm === 'block') && peek !== true ? Promise.reject(new StoreError('STORE_UNAVAILABLE', 'connect ECONNREFUSED')) : inner.decide(key, rules, cost, peek),
      charge: (key, rules, cost) => inner.charge(key, rules, cost),
      reset: (key, rules) => inner.reset(key, rules),
      acquire: (key, rule, cost, leaseId) => inner.acquire(key, rule, cost, leaseId),
      release: (key, rule, leaseId) => inner.release(key, rule, leaseId),
      close: () => inner.close(),
    };
    const { engine, events } = escalating(manualClock(), store);
    expect((await engine.check(req())).action).toBe('allow');
    const refused = await engine.check(req());
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1'); // the window's own wait, no block
    const failed = events.filter((e) => e.type === 'store-error');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ policy: 'p', key: 'ip:127.0.0.1', requestId: refused.requestId, path: '/r' });
    expect(refused.requestId).not.toBe('');
  });

  it('bad escalation options are configuration errors naming the option', () => {
    const block = { requestsAllowed: 1, timeWindowMinutes: 1, blockDurationMinutes: 10 };
    const bad: [object, string, RegExp][] = [
      [{ ...block, blockEscalation: { multiplier: 0.5 } }, 'p.blockEscalation.multiplier', />=1/],
      [{ ...block, blockEscalation: { multiplier: -2 } }, 'p.blockEscalation.multiplier', />=1/],
      [{ ...block, blockEscalation: { maxBlockMinutes: 0 } }, 'p.blockEscalation.maxBlockMinutes', />0/],
      [{ ...block, blockEscalation: { maxBlockMinutes: -5 } }, 'p.blockEscalation.maxBlockMinutes', />0/],
      [{ ...block, blockEscalation: { resetAfterMinutes: 0 } }, 'p.blockEscalation.resetAfterMinutes', />0/],
      [{ ...block, blockEscalation: { maxBlockMinutes: 5 } }, 'p.blockEscalation.maxBlockMinutes', /at least the block duration \(10 minutes\)/],
      [{ ...block, blockEscalation: { multipler: 2 } }, 'p.blockEscalation.multipler', /unknown option/],
      [{ ...block, blockEscalation: 2 }, 'p.blockEscalation', /expected object/],
      [{ requestsAllowed: 1, timeWindowMinutes: 1, blockEscalation: {} }, 'p.blockEscalation', /needs blockDurationMinutes or blockDurationSeconds/],
      [{ failedAuth: { threshold: 3 }, blockEscalation: {} }, 'p.blockEscalation', /failedAuth/],
    ];
    for (const [options, field, message] of bad) {
      const err = configErrorOf(options);
      expect(err.field, JSON.stringify(options)).toBe(field);
      expect(err.message, JSON.stringify(options)).toMatch(message);
    }
  });
});
