/**
 * Spec: analytics stay bounded under traffic from rotating addresses (issue 10 item 10). In Redis,
 * a minute keeps at most `maxDistinctPerMinute` consumers (and IPs), across every instance sharing
 * it, as the memory analytics do; a request nobody identified counts under its IP's bucket (the
 * /64 for IPv6). Checked on the real Redis (REDIS_URL) and through a real gateway process.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnalyticsRecorder, OTHER } from '../../src/observability/analytics.js';
import { RedisAnalytics } from '../../src/observability/redis-analytics.js';
import { echoUpstream, spawnGateway, statuses, writeConfig } from '../gateway/support.js';
import { event } from './support.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
let redis: Redis;
const prefixes: string[] = [];
const fresh = () => {
  const p = `test:obsb:${randomUUID()}:`;
  prefixes.push(p);
  return p;
};

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

describe('Redis analytics', () => {
  it('keep at most maxDistinctPerMinute consumers and IPs per minute, across instances; the rest count as (other)', async () => {
    const prefix = fresh();
    const now = Date.now();
    const a = new RedisAnalytics({ client: redis, prefix, maxDistinctPerMinute: 20 });
    const b = new RedisAnalytics({ client: redis, prefix, maxDistinctPerMinute: 20 });
    // Two instances, 30 distinct unidentified clients each, every request a 429.
    for (const [store, base] of [[a, 0], [b, 100]] as const) {
      const rec = new AnalyticsRecorder();
      for (let i = 0; i < 30; i++) rec.add(event({ time: now, consumer: undefined, key: undefined, ip: `198.51.100.${base + i}`, limited: true }));
      await store.apply(rec.take());
    }
    const min = Math.floor(now / 60_000);
    const perClient = await redis.keys(`${prefix}{a}:c:${min}:*`);
    expect(perClient).toHaveLength(21); // 20 admitted + (other)
    expect(perClient).toContain(`${prefix}{a}:c:${min}:${OTHER}`);
    expect(await redis.zcard(`${prefix}{a}:ti:${min}`)).toBe(21);
    expect(await redis.zcard(`${prefix}{a}:tc:${min}`)).toBe(21);

    const s = await a.summary('5m', { now, top: 100 });
    expect(s.total).toBe(60);
    expect(s.limited).toBe(60);
    expect(s.topIps.find((c) => c.id === OTHER)?.count).toBe(40);
    expect(s.topIps.reduce((n, c) => n + c.count, 0)).toBe(60);
    // A client admitted earlier in the minute keeps its own entry.
    const rec = new AnalyticsRecorder();
    rec.add(event({ time: now, consumer: undefined, key: undefined, ip: '198.51.100.0', limited: true }));
    await b.apply(rec.take());
    expect((await a.summary('5m', { now, top: 100 })).topIps.find((c) => c.id === '198.51.100.0')?.count).toBe(2);
  });

  it('refuses a cap that is not a positive integer', () => {
    expect(() => new RedisAnalytics({ client: redis, maxDistinctPerMinute: 0 })).toThrow(/maxDistinctPerMinute/);
  });
});

describe('attribution of unidentified requests', () => {
  it('counts them under the IPv6 /64 bucket, not per address', () => {
    const rec = new AnalyticsRecorder();
    const now = Date.now();
    for (let i = 1; i <= 50; i++) rec.add(event({ time: now, consumer: undefined, key: undefined, ip: `2001:db8:1:2::${i.toString(16)}`, limited: true }));
    const m = [...rec.take().minutes.values()][0];
    expect([...(m?.consumers.keys() ?? [])]).toEqual(['2001:db8:1:2:0:0:0:0/64']);
    expect([...(m?.throttledIps ?? [])]).toEqual([['2001:db8:1:2:0:0:0:0/64', 50]]);
  });

  it('through a gateway on Redis: 401s from 40 addresses of one /64 leave one per-client hash, not 40', async () => {
    const up = await echoUpstream();
    const prefix = fresh().replace(/:$/, '-');
    const g = await spawnGateway(
      writeConfig({
        server: { trustProxy: ['127.0.0.1'] },
        store: { type: 'redis', url: REDIS_URL, prefix },
        upstreams: { api: { url: up.url } },
        consumers: [{ sub: 'acme', keys: [{ value: 'acme-key-0123456789abcdef' }] }],
        routes: [{ path: '/*', upstream: 'api', auth: 'required' }],
        observability: { logs: { enabled: false }, analytics: { flushIntervalMs: 50 } },
      }),
    );
    try {
      for (let i = 1; i <= 40; i++) {
        expect(await statuses(`${g.url}/x`, 1, { 'x-api-key': 'wrong-key-0123456789abcdef', 'x-forwarded-for': `2001:db8:77:1::${i.toString(16)}` })).toEqual([401]);
      }
      let keys: string[] = [];
      for (let i = 0; i < 50 && keys.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        keys = await redis.keys(`${prefix}{a}:c:*`);
      }
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatch(/2001:db8:77:1:0:0:0:0\/64$/);
    } finally {
      await g.stop();
      await up.close();
    }
  });
});
