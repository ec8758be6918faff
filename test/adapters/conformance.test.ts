/**
 * One behaviour, four adapters: every test below runs against node:http, Express, Fastify and Hono
 * servers on loopback, with real HTTP requests (undici).
 */
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/core/errors.js';
import type { Store } from '../../src/core/store.js';
import type { PolicyEvent } from '../../src/http/engine.js';
import { MemoryStore } from '../../src/stores/memory-store.js';
import { factories, type Route, type Running } from './harness.js';

/** A store whose backend is down: every call fails the way a RedisStore does. */
class DownStore implements Store {
  calls = 0;
  decide(): Promise<never> {
    this.calls++;
    return Promise.reject(new StoreError('STORE_UNAVAILABLE', 'connect ECONNREFUSED 127.0.0.1:7199'));
  }
  charge(): Promise<never> {
    this.calls++;
    return Promise.reject(new StoreError('STORE_UNAVAILABLE', 'connect ECONNREFUSED 127.0.0.1:7199'));
  }
  reset = () => Promise.resolve();
  acquire = () => Promise.reject(new StoreError('STORE_UNAVAILABLE', 'down'));
  release = () => Promise.resolve();
  close = () => Promise.resolve();
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const quiet = { logger: false as const };

async function get(base: string, path: string, headers: Record<string, string> = {}) {
  const res = await request(`${base}${path}`, { headers });
  const text = await res.body.text();
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h[k] = v;
  return { status: res.statusCode, headers: h, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

describe.each(Object.keys(factories) as (keyof typeof factories)[])('%s adapter', (name) => {
  const factory = factories[name];
  let running: Running | undefined;
  const start = async (routes: Route[], host?: string) => (running = await factory(routes, host));
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  it('answers the (N+1)-th request with the exact problem+json 429 and Retry-After', async () => {
    const s = await start([{ path: '/orders', options: { ...quiet, requestsAllowed: 2, timeWindowMinutes: 1, buildId: 'build-42' } }]);
    for (let i = 0; i < 2; i++) {
      const ok = await get(s.url, '/orders?page=1');
      expect(ok.status).toBe(200);
      expect(ok.text).toBe('ok');
      expect(ok.headers['x-request-id']).toMatch(UUID);
      expect(ok.headers['retry-after']).toBeUndefined(); // retry-after mode: Zuplo sends nothing on success
    }
    const before = Date.now();
    const r = await get(s.url, '/orders?page=1');
    expect(r.status).toBe(429);
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(r.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(Number(r.headers['retry-after'])).toBe(30); // GCRA: 2 per 60 s, one unit back after 30 s
    const body = r.json();
    expect(Object.keys(body)).toEqual(['type', 'title', 'status', 'detail', 'instance', 'trace']);
    expect(body).toMatchObject({
      type: 'https://httpproblems.com/http-status/429',
      title: 'Too Many Requests',
      status: 429,
      detail: 'Rate limit exceeded',
      instance: '/orders',
    });
    const trace = body.trace as Record<string, string>;
    expect(Object.keys(trace)).toEqual(['requestId', 'timestamp', 'buildId']);
    expect(trace.requestId).toBe(r.headers['x-request-id']);
    expect(trace.requestId).toMatch(UUID);
    expect(trace.buildId).toBe('build-42');
    expect(trace.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(Math.abs(Date.parse(trace.timestamp as string) - before)).toBeLessThan(60_000);
  });

  it('echoes a sane incoming x-request-id and replaces an insane one', async () => {
    const s = await start([{ path: '/a', options: { ...quiet, requestsAllowed: 1, timeWindowMinutes: 1 } }]);
    const ok = await get(s.url, '/a', { 'x-request-id': 'abc-123_DEF.4' });
    expect(ok.headers['x-request-id']).toBe('abc-123_DEF.4');
    const r = await get(s.url, '/a', { 'x-request-id': 'trace-7' });
    expect(r.status).toBe(429);
    expect((r.json().trace as Record<string, string>).requestId).toBe('trace-7');
    for (const bad of ['x'.repeat(129), 'a b', '<script>', 'id"quote']) {
      const b = await get(s.url, '/a', { 'x-request-id': bad });
      expect(b.headers['x-request-id']).toMatch(UUID);
      expect((b.json().trace as Record<string, string>).requestId).toBe(b.headers['x-request-id']);
    }
  });

  it('ietf mode: RateLimit-Policy and RateLimit lists for several policies, on allowed and refused responses', async () => {
    const s = await start([
      {
        path: '/ietf',
        options: {
          ...quiet,
          policies: [
            { name: 'per-hour', requestsAllowed: 100, timeWindowMinutes: 60, headerMode: 'ietf', algorithm: 'fixed-window' },
            { name: 'per-10s', requestsAllowed: 3, timeWindowSeconds: 10, headerMode: 'ietf', algorithm: 'fixed-window' },
          ],
        },
      },
    ]);
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await get(s.url, '/ietf');
      expect(r.status).toBe(200);
      expect(r.headers['ratelimit-policy']).toBe('"per-hour";q=100;w=3600, "per-10s";q=3;w=10');
      seen.push(r.headers['ratelimit'] as string);
    }
    expect(seen.map((v) => v.replace(/;t=\d+/g, ''))).toEqual([
      '"per-hour";r=99, "per-10s";r=2',
      '"per-hour";r=98, "per-10s";r=1',
      '"per-hour";r=97, "per-10s";r=0',
    ]);
    for (const v of seen) expect(v).toMatch(/^"per-hour";r=\d+;t=([1-9]\d*), "per-10s";r=\d+;t=([1-9]|10)$/);
    const r = await get(s.url, '/ietf');
    expect(r.status).toBe(429);
    // Refused: nothing consumed from the hourly policy; t of the refusing policy = Retry-After.
    const m = /^"per-hour";r=97;t=\d+, "per-10s";r=0;t=(\d+)$/.exec(r.headers['ratelimit'] as string);
    expect(m).not.toBeNull();
    expect(r.headers['retry-after']).toBe(m?.[1]);
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('legacy mode: X-RateLimit-Limit / -Remaining / -Reset (epoch seconds)', async () => {
    const s = await start([{ path: '/l', options: { ...quiet, requestsAllowed: 2, timeWindowSeconds: 30, headerMode: 'legacy', algorithm: 'sliding-log' } }]);
    const now = Date.now() / 1000;
    const a = await get(s.url, '/l');
    expect(a.headers['x-ratelimit-limit']).toBe('2');
    expect(a.headers['x-ratelimit-remaining']).toBe('1');
    const reset = Number(a.headers['x-ratelimit-reset']);
    expect(reset).toBeGreaterThan(now);
    expect(reset).toBeLessThanOrEqual(Math.ceil(now) + 31);
    const b = await get(s.url, '/l');
    expect(b.headers['x-ratelimit-remaining']).toBe('0');
    const c = await get(s.url, '/l');
    expect(c.status).toBe(429);
    expect(c.headers['x-ratelimit-remaining']).toBe('0');
    expect(Number(c.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(c.headers['ratelimit']).toBeUndefined();
  });

  it('none mode: a 429 without any rate-limit header', async () => {
    const s = await start([{ path: '/n', options: { ...quiet, requestsAllowed: 1, timeWindowMinutes: 1, headerMode: 'none' } }]);
    expect((await get(s.url, '/n')).status).toBe(200);
    const r = await get(s.url, '/n');
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBeUndefined();
    expect(r.headers['ratelimit']).toBeUndefined();
    expect(r.headers['x-ratelimit-limit']).toBeUndefined();
    expect(r.json().status).toBe(429);
  });

  it('ignores X-Forwarded-For without trustProxy: spoofing buys no fresh bucket', async () => {
    const s = await start([{ path: '/ip', options: { ...quiet, requestsAllowed: 2, timeWindowMinutes: 1 } }]);
    expect((await get(s.url, '/ip', { 'x-forwarded-for': '10.0.0.1' })).status).toBe(200);
    expect((await get(s.url, '/ip', { 'x-forwarded-for': '10.0.0.2' })).status).toBe(200);
    expect((await get(s.url, '/ip', { 'x-forwarded-for': '10.0.0.3' })).status).toBe(429);
    expect((await get(s.url, '/ip', { forwarded: 'for=10.0.0.4' })).status).toBe(429);
  });

  it('trustProxy 1 believes only the entry the trusted proxy appended', async () => {
    const s = await start([{ path: '/ip', options: { ...quiet, requestsAllowed: 1, timeWindowMinutes: 1, trustProxy: 1 } }]);
    expect((await get(s.url, '/ip', { 'x-forwarded-for': '203.0.113.7' })).status).toBe(200);
    expect((await get(s.url, '/ip', { 'x-forwarded-for': '203.0.113.7' })).status).toBe(429);
    // The client prepends fake entries: the proxy still appended the real address last.
    expect((await get(s.url, '/ip', { 'x-forwarded-for': '1.1.1.1, 203.0.113.7' })).status).toBe(429);
    expect((await get(s.url, '/ip', { 'x-forwarded-for': '2.2.2.2,3.3.3.3, 203.0.113.7' })).status).toBe(429);
    // A different real client gets its own bucket.
    expect((await get(s.url, '/ip', { 'x-forwarded-for': '198.51.100.9' })).status).toBe(200);
  });

  it('trustProxy CIDR list walks right to left through trusted hops only', async () => {
    const s = await start([{ path: '/ip', options: { ...quiet, requestsAllowed: 1, timeWindowMinutes: 1, trustProxy: ['loopback', '10.0.0.0/8'] } }]);
    expect((await get(s.url, '/ip', { 'x-forwarded-for': '203.0.113.7, 10.1.2.3' })).status).toBe(200);
    // Same client behind another internal hop, and with a spoofed prefix: same bucket.
    expect((await get(s.url, '/ip', { 'x-forwarded-for': '203.0.113.7' })).status).toBe(429);
    expect((await get(s.url, '/ip', { 'x-forwarded-for': '8.8.8.8, 203.0.113.7, 10.9.9.9' })).status).toBe(429);
    // Garbage where an address should be stops at the last trusted hop, never a fresh key per value.
    expect((await get(s.url, '/ip', { 'x-forwarded-for': 'not-an-ip' })).status).toBe(200); // bucket of 127.0.0.1
    expect((await get(s.url, '/ip', { 'x-forwarded-for': 'still-not-an-ip' })).status).toBe(429);
  });

  it('Forwarded (RFC 7239) is read only when chosen, with IPv6 clients bucketed per /64', async () => {
    const s = await start([{ path: '/ip', options: { ...quiet, requestsAllowed: 1, timeWindowMinutes: 1, trustProxy: 1, forwardedHeader: 'forwarded' } }]);
    expect((await get(s.url, '/ip', { forwarded: 'for="[2001:db8:aa:bb::1]:4711";proto=https' })).status).toBe(200);
    expect((await get(s.url, '/ip', { forwarded: 'for="[2001:db8:aa:bb:ffff::2]"' })).status).toBe(429);
    expect((await get(s.url, '/ip', { forwarded: 'for="[2001:db8:aa:bc::1]"', 'x-forwarded-for': '9.9.9.9' })).status).toBe(200);
    expect((await get(s.url, '/ip', { 'x-forwarded-for': '9.9.9.8' })).status).toBe(200); // XFF ignored: bucket of the socket
  });

  it('binds ::1 and limits IPv6 clients per /64 by default, per address when configured', async () => {
    const s = await start(
      [
        { path: '/v6', options: { ...quiet, requestsAllowed: 1, timeWindowMinutes: 1, trustProxy: ['::1'] } },
        { path: '/v6-128', options: { ...quiet, name: 'exact', requestsAllowed: 1, timeWindowMinutes: 1, trustProxy: ['::1'], ipv6Subnet: 128 } },
      ],
      '::1',
    );
    expect((await get(s.url, '/v6')).status).toBe(200); // the socket ::1 itself
    expect((await get(s.url, '/v6')).status).toBe(429);
    expect((await get(s.url, '/v6', { 'x-forwarded-for': '2001:db8:1:2::a' })).status).toBe(200);
    expect((await get(s.url, '/v6', { 'x-forwarded-for': '2001:db8:1:2:ffff:ffff:ffff:ffff' })).status).toBe(429);
    expect((await get(s.url, '/v6', { 'x-forwarded-for': '2001:db8:1:3::a' })).status).toBe(200);
    expect((await get(s.url, '/v6-128', { 'x-forwarded-for': '2001:db8:1:2::a' })).status).toBe(200);
    expect((await get(s.url, '/v6-128', { 'x-forwarded-for': '2001:db8:1:2::b' })).status).toBe(200);
    expect((await get(s.url, '/v6-128', { 'x-forwarded-for': '2001:db8:1:2::b' })).status).toBe(429);
  });

  it('a pool makes two routes share one limit per key', async () => {
    const store = new MemoryStore();
    const s = await start([
      { path: '/search', options: { ...quiet, store, name: 'search', pool: 'reads', requestsAllowed: 3, timeWindowMinutes: 1, headerMode: 'ietf' } },
      { path: '/list', options: { ...quiet, store, name: 'list', pool: 'reads', requestsAllowed: 3, timeWindowMinutes: 1, headerMode: 'ietf' } },
      { path: '/other', options: { ...quiet, store, name: 'other', requestsAllowed: 3, timeWindowMinutes: 1 } },
    ]);
    expect((await get(s.url, '/search')).status).toBe(200);
    expect((await get(s.url, '/list')).status).toBe(200);
    const third = await get(s.url, '/search');
    expect(third.headers['ratelimit']).toMatch(/^"reads";r=0;/);
    expect((await get(s.url, '/list')).status).toBe(429);
    expect((await get(s.url, '/other')).status).toBe(200);
  });

  it('per-tier limits from an identifier function; no result means not limited', async () => {
    const s = await start([
      {
        path: '/tiered',
        options: {
          ...quiet,
          rateLimitBy: 'function',
          requestsAllowed: 1,
          timeWindowMinutes: 1,
          headerMode: 'ietf',
          identifier: async (req) => {
            if (req.user === undefined) return undefined; // e.g. health checks
            return { key: req.user.sub, requestsAllowed: req.user.tier === 'premium' ? 4 : 2 };
          },
        },
      },
    ]);
    const free = { 'x-test-user': 'alice', 'x-test-tier': 'free' };
    const premium = { 'x-test-user': 'bob', 'x-test-tier': 'premium' };
    const statuses = async (h: Record<string, string>, n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await get(s.url, '/tiered', h)).status);
      return out;
    };
    expect(await statuses(free, 3)).toEqual([200, 200, 429]);
    const p = await get(s.url, '/tiered', premium);
    expect(p.headers['ratelimit-policy']).toBe('"rate-limit";q=4;w=60');
    expect(await statuses(premium, 4)).toEqual([200, 200, 200, 429]);
    expect(await statuses({}, 5)).toEqual([200, 200, 200, 200, 200]);
  });

  it('shadow mode counts and logs but never refuses, and sends no rate-limit headers', async () => {
    const events: PolicyEvent[] = [];
    const s = await start([
      { path: '/s', options: { logger: false, onEvent: (e) => events.push(e), requestsAllowed: 2, timeWindowMinutes: 1, shadow: true, headerMode: 'ietf' } },
    ]);
    for (let i = 0; i < 5; i++) {
      const r = await get(s.url, '/s');
      expect(r.status).toBe(200);
      expect(r.headers['ratelimit']).toBeUndefined();
    }
    expect(events.filter((e) => e.type === 'shadow-limited').map((e) => e.path)).toEqual(['/s', '/s', '/s']);
  });

  it('store failure with onStoreError allow: requests pass and the failure is reported', async () => {
    const events: PolicyEvent[] = [];
    const store = new DownStore();
    const s = await start([{ path: '/f', options: { logger: false, onEvent: (e) => events.push(e), store, requestsAllowed: 1, timeWindowMinutes: 1 } }]);
    for (let i = 0; i < 3; i++) expect((await get(s.url, '/f')).status).toBe(200);
    expect(store.calls).toBe(3);
    expect(events.map((e) => e.type)).toEqual(['store-error', 'store-error', 'store-error']);
  });

  it('store failure with onStoreError deny: 503 problem+json', async () => {
    const s = await start([{ path: '/f', options: { ...quiet, store: new DownStore(), requestsAllowed: 1, timeWindowMinutes: 1, onStoreError: 'deny', buildId: 'b1' } }]);
    const r = await get(s.url, '/f?x=1');
    expect(r.status).toBe(503);
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(r.json()).toMatchObject({
      type: 'https://httpproblems.com/http-status/503',
      title: 'Service Unavailable',
      status: 503,
      detail: 'Rate limit service unavailable',
      instance: '/f',
      trace: { buildId: 'b1', requestId: r.headers['x-request-id'] },
    });
  });

  it('failed-auth protection: after N counted statuses the identifier is refused for the penalty', async () => {
    const s = await start([
      {
        path: '/token',
        options: { ...quiet, name: 'login-failures', rateLimitBy: 'header', headerName: 'x-client-id', failedAuth: { countStatuses: [400, 401], threshold: 3, penaltySeconds: 120 } },
      },
    ]);
    const mallory = { 'x-client-id': 'mallory' };
    // Successes do not count.
    for (let i = 0; i < 5; i++) expect((await get(s.url, '/token', mallory)).status).toBe(200);
    expect((await get(s.url, '/token', { ...mallory, 'x-test-status': '401' })).status).toBe(401);
    expect((await get(s.url, '/token', { ...mallory, 'x-test-status': '403' })).status).toBe(403); // not counted
    expect((await get(s.url, '/token', { ...mallory, 'x-test-status': '400' })).status).toBe(400);
    expect((await get(s.url, '/token', { ...mallory, 'x-test-status': '401' })).status).toBe(401); // third: penalty starts
    // The penalty is recorded after the response finished; give the event loop a moment.
    let r = await get(s.url, '/token', mallory);
    for (let i = 0; i < 20 && r.status !== 429; i++) {
      await new Promise((res) => setTimeout(res, 25));
      r = await get(s.url, '/token', mallory);
    }
    expect(r.status).toBe(429);
    expect(r.json().detail).toBe('Rate limit exceeded');
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(100);
    expect(Number(r.headers['retry-after'])).toBeLessThanOrEqual(120);
    expect((await get(s.url, '/token', { 'x-client-id': 'alice' })).status).toBe(200);
  });

  it('unidentified requests: by IP by default, 401 with deny, unlimited with allow', async () => {
    const s = await start([
      { path: '/u-ip', options: { ...quiet, rateLimitBy: 'user', requestsAllowed: 1, timeWindowMinutes: 1 } },
      { path: '/u-deny', options: { ...quiet, name: 'd', rateLimitBy: 'user', requestsAllowed: 1, timeWindowMinutes: 1, onUnidentified: 'deny' } },
      { path: '/u-allow', options: { ...quiet, name: 'a', rateLimitBy: 'apiKey', requestsAllowed: 1, timeWindowMinutes: 1, onUnidentified: 'allow' } },
    ]);
    expect((await get(s.url, '/u-ip')).status).toBe(200);
    expect((await get(s.url, '/u-ip')).status).toBe(429);
    expect((await get(s.url, '/u-ip', { 'x-test-user': 'carol' })).status).toBe(200); // users are not in the IP bucket
    const d = await get(s.url, '/u-deny');
    expect(d.status).toBe(401);
    expect(d.json()).toMatchObject({ status: 401, title: 'Unauthorized', instance: '/u-deny' });
    expect((await get(s.url, '/u-deny', { 'x-test-user': 'carol' })).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await get(s.url, '/u-allow')).status).toBe(200);
    expect((await get(s.url, '/u-allow', { 'x-api-key': 'k1' })).status).toBe(200);
    expect((await get(s.url, '/u-allow', { 'x-api-key': 'k1' })).status).toBe(429);
    expect((await get(s.url, '/u-allow', { 'x-api-key': 'k2' })).status).toBe(200);
  });

  it('allow and deny lists', async () => {
    const s = await start([
      { path: '/allow', options: { ...quiet, requestsAllowed: 1, timeWindowMinutes: 1, allowList: ['127.0.0.0/8'] } },
      { path: '/deny', options: { ...quiet, name: 'd', requestsAllowed: 100, timeWindowMinutes: 1, denyList: ['127.0.0.1'] } },
    ]);
    for (let i = 0; i < 3; i++) expect((await get(s.url, '/allow')).status).toBe(200);
    const d = await get(s.url, '/deny');
    expect(d.status).toBe(403);
    expect(d.json()).toMatchObject({ status: 403, title: 'Forbidden', detail: 'Request denied by policy' });
  });

  it('hostile header values: huge and binary keys are answered, never crash', async () => {
    const s = await start([{ path: '/h', options: { ...quiet, rateLimitBy: 'header', headerName: 'x-customer', requestsAllowed: 1, timeWindowMinutes: 1 } }]);
    const huge = 'A'.repeat(12_000);
    expect((await get(s.url, '/h', { 'x-customer': huge })).status).toBe(200);
    expect((await get(s.url, '/h', { 'x-customer': huge })).status).toBe(429); // hashed, still one bucket
    expect((await get(s.url, '/h', { 'x-customer': `${huge}B` })).status).toBe(200);
    const binary = Buffer.from([0xff, 0xfe, 0x80, 0xc3, 0x28, 0xa0, 0x5c, 0x22]).toString('latin1');
    expect((await get(s.url, '/h', { 'x-customer': binary })).status).toBe(200);
    expect((await get(s.url, '/h', { 'x-customer': binary })).status).toBe(429);
    const tooBig = await request(`${s.url}/h`, { headers: { 'x-customer': 'x'.repeat(40_000) } });
    await tooBig.body.text();
    expect(tooBig.statusCode).toBe(431); // Node's header limit answers before any adapter runs
    expect((await get(s.url, '/h', { 'x-customer': 'fine' })).status).toBe(200); // still serving
  });
});
