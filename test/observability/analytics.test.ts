/**
 * One analytics spec run against both stores: memory and real Redis (shared server, random key
 * prefix per test). Counts must equal what was recorded.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnalyticsRecorder, MemoryAnalytics, type AnalyticsStore } from '../../src/observability/analytics.js';
import { createObserver } from '../../src/observability/observer.js';
import { RedisAnalytics } from '../../src/observability/redis-analytics.js';
import { decision, event } from './support.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
let redis: Redis;
const prefixes: string[] = [];

beforeAll(() => {
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  for (const p of prefixes) {
    const keys = await redis.keys(`${p}*`);
    if (keys.length) await redis.del(...keys);
  }
  redis.disconnect();
});

const stores: Array<[string, (opts?: { retentionMs?: number }) => AnalyticsStore]> = [
  ['memory', (o) => new MemoryAnalytics(o)],
  [
    'redis',
    (o) => {
      const prefix = `test:obs:${randomUUID()}:`;
      prefixes.push(prefix);
      return new RedisAnalytics({ client: redis, prefix, ...o });
    },
  ],
];

async function record(store: AnalyticsStore, events: ReturnType<typeof event>[]) {
  const r = new AnalyticsRecorder();
  for (const e of events) r.add(e);
  await store.apply(r.take());
}

describe.each(stores)('%s analytics', (_name, make) => {
  it('counts calls by route and status, and 429s by consumer and IP, exactly', async () => {
    const store = make();
    const evs = [
      ...Array.from({ length: 7 }, () => event({ route: 'orders' })),
      ...Array.from({ length: 3 }, () => event({ route: 'orders', limited: true, consumer: 'alice', ip: '10.0.0.1' })),
      ...Array.from({ length: 5 }, () => event({ route: 'search', limited: true, consumer: 'bob', ip: '10.0.0.2' })),
      ...Array.from({ length: 2 }, () => event({ route: 'search', status: 502 })),
    ];
    // Two separate flushes must add up.
    await record(store, evs.slice(0, 8));
    await record(store, evs.slice(8));
    const s = await store.summary('5m');
    expect(s.total).toBe(17);
    expect(s.limited).toBe(8);
    expect(s.endpoints).toEqual([
      { route: 'orders', status: 200, count: 7 },
      { route: 'search', status: 429, count: 5 },
      { route: 'orders', status: 429, count: 3 },
      { route: 'search', status: 502, count: 2 },
    ]);
    expect(s.topConsumers).toEqual([{ id: 'bob', count: 5 }, { id: 'alice', count: 3 }]);
    expect(s.topIps).toEqual([{ id: '10.0.0.2', count: 5 }, { id: '10.0.0.1', count: 3 }]);
    const live = await store.live(10);
    expect(live.seconds).toHaveLength(10);
    expect(live.seconds.reduce((a, x) => a + x.total, 0)).toBe(17);
    expect(live.seconds.reduce((a, x) => a + x.limited, 0)).toBe(8);
  });

  it('orders the top N by 429 count and cuts at N', async () => {
    const store = make();
    const evs = [];
    for (let i = 1; i <= 12; i++) for (let j = 0; j < i; j++) evs.push(event({ limited: true, consumer: `c${i}`, ip: `10.0.1.${i}` }));
    await record(store, evs);
    const s = await store.summary('1h', { top: 3 });
    expect(s.topConsumers).toEqual([{ id: 'c12', count: 12 }, { id: 'c11', count: 11 }, { id: 'c10', count: 10 }]);
    expect(s.topIps.map((x) => x.id)).toEqual(['10.0.1.12', '10.0.1.11', '10.0.1.10']);
  });

  it('sums windows over minute buckets: 5m excludes what 1h includes', async () => {
    const store = make();
    const now = Date.now();
    await record(store, [event({ time: now - 20 * 60_000, limited: true, consumer: 'old' }), event({ time: now, limited: true, consumer: 'new' })]);
    expect((await store.summary('5m')).topConsumers.map((c) => c.id)).toEqual(['new']);
    expect((await store.summary('1h')).limited).toBe(2);
    expect((await store.summary('24h')).limited).toBe(2);
  });

  it('drops buckets older than the retention', async () => {
    const store = make({ retentionMs: 10 * 60_000 });
    const now = Date.now();
    await record(store, [event({ time: now - 30 * 60_000, limited: true, consumer: 'ancient' }), event({ time: now, consumer: 'fresh' })]);
    const s = await store.summary('1h');
    expect(s.total).toBe(1);
    expect(s.topConsumers).toEqual([]);
  });

  it('reports consumers close to their limit with their peak share, and a consumer drill-down', async () => {
    const store = make();
    await record(store, [
      event({ consumer: 'carol', decision: decision({ limit: 10, remaining: 5 }) }), // 50 %: not near
      event({ consumer: 'carol', decision: decision({ limit: 10, remaining: 1 }) }), // 90 %
      event({ consumer: 'dave', decision: decision({ limit: 10, remaining: 2 }) }), // 80 %
      event({ consumer: 'dave', route: 'search', limited: true, decision: decision({ allowed: false }) }), // 100 %
    ]);
    const s = await store.summary('5m');
    expect(s.nearLimit).toEqual([
      { consumer: 'dave', policy: 'per-minute', usage: 1 },
      { consumer: 'carol', policy: 'per-minute', usage: 0.9 },
    ]);
    const d = await store.consumer('dave', '5m');
    expect(d).toMatchObject({ consumer: 'dave', total: 2, limited: 1 });
    expect(d.endpoints).toEqual([
      { route: 'orders', status: 200, count: 1 },
      { route: 'search', status: 429, count: 1 },
    ]);
    expect(d.nearLimit).toEqual([{ policy: 'per-minute', usage: 1 }]);
    expect((await store.consumer('nobody', '5m')).total).toBe(0);
  });
});

describe('Redis analytics across instances', () => {
  it('two observers on one Redis aggregate into one picture', async () => {
    const prefix = `test:obs:${randomUUID()}:`;
    prefixes.push(prefix);
    const a = createObserver({ logs: false, analytics: { redis, prefix } });
    const b = createObserver({ logs: false, analytics: { redis, prefix } });
    for (let i = 0; i < 40; i++) a.record(event({ limited: i % 4 === 0, consumer: 'eve' }));
    for (let i = 0; i < 60; i++) b.record(event({ limited: i % 3 === 0, consumer: 'eve', route: 'search' }));
    await Promise.all([a.flush(), b.flush()]);
    const s = await a.analytics.summary('5m');
    expect(s.total).toBe(100);
    expect(s.limited).toBe(10 + 20);
    expect(s.topConsumers).toEqual([{ id: 'eve', count: 30 }]);
    expect(await b.analytics.summary('5m')).toMatchObject({ total: 100, limited: 30 });
    await Promise.all([a.close(), b.close()]);
  });

  it('sets an expiry on every bucket key so Redis drops them without any instance running', async () => {
    const prefix = `test:obs:${randomUUID()}:`;
    prefixes.push(prefix);
    const store = new RedisAnalytics({ client: redis, prefix, retentionMs: 10 * 60_000 });
    await record(store, [event({ limited: true, decision: decision({ allowed: false }) })]);
    const keys = await redis.keys(`${prefix}*`);
    expect(keys.length).toBeGreaterThanOrEqual(5);
    for (const k of keys) {
      const ttl = await redis.ttl(k);
      expect(ttl, k).toBeGreaterThan(0);
      expect(ttl, k).toBeLessThanOrEqual(11 * 60);
    }
  });
});

describe('near-limit warnings across instances', () => {
  it('two observers on one Redis emit one warning per window per consumer and policy between them', async () => {
    const prefix = `test:obs:${randomUUID()}:`;
    prefixes.push(prefix);
    const seen: string[] = [];
    const make = (name: string) => createObserver({ logs: false, analytics: { redis, prefix }, warnings: { onWarning: (w) => seen.push(`${name}:${w.consumer}`) } });
    const a = make('a');
    const b = make('b');
    const at = decision({ limit: 10, remaining: 1 });
    a.record(event({ consumer: 'frank', decision: at }));
    b.record(event({ consumer: 'frank', decision: at }));
    a.record(event({ consumer: 'gina', decision: at }));
    b.record(event({ consumer: 'gina', decision: at }));
    await redis.ping(); // the claims went out on this connection before the PING: their replies are in
    expect(seen.filter((s) => s.endsWith(':frank'))).toHaveLength(1);
    expect(seen.filter((s) => s.endsWith(':gina'))).toHaveLength(1);
    await Promise.all([a.close(), b.close()]);
  });
});

describe('memory analytics bounds', () => {
  it('keeps at most maxDistinctPerMinute consumers per minute bucket, folding newcomers into (other) with exact totals', async () => {
    const store = new MemoryAnalytics({ maxDistinctPerMinute: 3 });
    const r = new AnalyticsRecorder();
    for (let i = 0; i < 10; i++) r.add(event({ limited: true, consumer: `u${i}`, ip: `10.9.0.${i}` }));
    await store.apply(r.take());
    const s = await store.summary('5m', { top: 10 });
    expect(s.limited).toBe(10);
    expect(s.topConsumers).toEqual([{ id: '(other)', count: 7 }, { id: 'u0', count: 1 }, { id: 'u1', count: 1 }, { id: 'u2', count: 1 }]);
    expect(s.topIps.reduce((a, x) => a + x.count, 0)).toBe(10);
    expect(s.topIps).toHaveLength(4);
  });
});
