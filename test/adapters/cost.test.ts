/**
 * Cost from the response through every adapter (node:http, Express, Fastify, Hono) on real
 * servers: the request is admitted on its reserve, the handler's `x-tokens-used` response header
 * is charged when the response finishes, and the overdraft refuses later requests with
 * Retry-After until it is paid back. Plus the overdraft bound with N requests in flight through
 * HTTP (got as the client), on the memory store and on real Redis.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { Readable } from 'node:stream';
import { sluiceRateLimit } from '../../src/fastify.js';
import { rateLimit as expressRateLimit } from '../../src/express.js';
import got from 'got';
import { afterAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/core/store.js';
import { rateLimit } from '../../src/http.js';
import { RedisStore } from '../../src/redis.js';
import { MemoryStore } from '../../src/stores/memory-store.js';
import { deletePrefix, REDIS_URL } from '../support/redis-server.js';
import { factories } from './harness.js';

// GCRA, 10 units per 100 s: one unit per 10 s, a bucket of 10; debts read in Retry-After.
const llm = { name: 'llm', requestsAllowed: 10, timeWindowSeconds: 100, headerMode: 'ietf' as const, cost: { responseHeader: 'x-tokens-used', max: 1000 } };

describe.each(Object.keys(factories) as (keyof typeof factories)[])('%s: cost from the response', (name) => {
  it('charges the x-tokens-used of the response; the overdraft refuses with Retry-After until paid back', async () => {
    const server = await factories[name]([{ path: '/llm', options: { ...llm, logger: false } }]);
    try {
      const first = await fetch(`${server.url}/llm`, { headers: { 'x-test-tokens': '25' } });
      expect(first.status).toBe(200);
      expect(first.headers.get('x-tokens-used')).toBe('25');
      expect(first.headers.get('ratelimit')).toMatch(/r=9/);
      await first.text();
      // The charge lands when the response finishes; wait for the refusal rather than a fixed time.
      let refused: Response | undefined;
      for (let i = 0; i < 50 && refused === undefined; i++) {
        const r = await fetch(`${server.url}/llm`);
        await r.text();
        if (r.status === 429) refused = r;
        else await new Promise((res) => setTimeout(res, 20));
      }
      expect(refused?.status).toBe(429);
      // 25 units into a bucket of 10: 15 owed at 10 s each, plus 10 s for the next unit.
      const wait = Number(refused?.headers.get('retry-after'));
      expect(wait).toBeGreaterThan(150);
      expect(wait).toBeLessThanOrEqual(160);
    } finally {
      await server.close();
    }
  });

  it('a response without the header is charged only its reserve', async () => {
    const server = await factories[name]([{ path: '/llm', options: { ...llm, logger: false } }]);
    try {
      for (let i = 0; i < 10; i++) expect((await fetch(`${server.url}/llm`)).status).toBe(200);
      expect((await fetch(`${server.url}/llm`)).status).toBe(429);
    } finally {
      await server.close();
    }
  });
});

describe('adapter options', () => {
  it("with `policies`, a top-level cost is the route's: it applies to the policies without their own", async () => {
    const limit = rateLimit({ logger: false, cost: 4, policies: [{ name: 'a', requestsAllowed: 10, timeWindowMinutes: 1, headerMode: 'ietf' }, { name: 'b', requestsAllowed: 10, timeWindowMinutes: 1, headerMode: 'ietf', cost: 1 }] });
    const r = await limit.engine.check({ method: 'GET', path: '/', headers: {}, remoteAddress: '127.0.0.1' });
    expect(r.headers.ratelimit).toBe('"a";r=6;t=24, "b";r=9;t=6');
  });
});

/**
 * A node:http server whose handler holds every admitted request until `release()`, then answers
 * with `x-tokens-used: <max>`: all admitted requests are in flight before any is charged.
 */
async function holdingServer(store: Store, reserve: number, max: number) {
  const limit = rateLimit({ ...llm, cost: { responseHeader: 'x-tokens-used', max, reserve }, store, logger: false });
  let held = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const server: Server = createServer(async (req, res) => {
    if (!(await limit(req, res))) return;
    held++;
    await gate;
    res.writeHead(200, { 'x-tokens-used': String(max) }).end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return { url, held: () => held, release, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

const stores: [string, () => Store][] = [
  ['memory store', () => new MemoryStore()],
  ['Redis', () => new RedisStore({ url: REDIS_URL, prefix: `${redisPrefix}${randomUUID().slice(0, 6)}:`, timeoutMs: 5000 })],
];
const redisPrefix = `sluicecostwire${randomUUID().slice(0, 8)}:`;
afterAll(() => deletePrefix(REDIS_URL, redisPrefix));

describe.each(stores)('overdraft bound through HTTP, %s', (_name, makeStore) => {
  it.each([
    [40, 1, 6],
    [30, 3, 20],
  ])('%i requests in flight (reserve %i, max %i): admitted while budget remained, overdrawn by at most admitted x (max - reserve)', async (n, reserve, max) => {
    const store = makeStore();
    const s = await holdingServer(store, reserve, max);
    try {
      const agent = { http: new (await import('node:http')).Agent({ keepAlive: true, maxSockets: n }) };
      const calls = Array.from({ length: n }, () => got(s.url, { agent, throwHttpErrors: false, retry: { limit: 0 } }));
      // Wait until every request was either refused (answered) or admitted (held in the handler).
      let refused = 0;
      const counted = calls.map((c) => c.then((r) => (r.statusCode === 429 ? refused++ : 0)));
      for (let i = 0; i < 500 && s.held() + refused < n; i++) await new Promise((r) => setTimeout(r, 10));
      const admitted = s.held();
      expect(admitted + refused).toBe(n);
      // Admitted on the reserve while budget remained: the bucket of 10 holds floor(10 / reserve) reserves.
      expect(admitted).toBe(Math.floor(10 / reserve));
      s.release();
      await Promise.all(counted);
      const responses = await Promise.all(calls);
      expect(responses.filter((r) => r.statusCode === 200)).toHaveLength(admitted);
      // The charges land on 'finish'; the next request then sees the whole debt.
      await new Promise((r) => setTimeout(r, 50));
      const overdraft = admitted * max - 10;
      const bound = admitted * (max - reserve);
      expect(overdraft).toBeLessThanOrEqual(bound);
      const next = await got(s.url, { throwHttpErrors: false, retry: { limit: 0 } });
      expect(next.statusCode).toBe(429);
      // Owed `overdraft` units at 10 s each plus this request's reserve, less the seconds elapsed.
      const wait = Number(next.headers['retry-after']);
      expect(wait).toBeLessThanOrEqual((overdraft + reserve) * 10);
      expect(wait).toBeGreaterThan((overdraft + reserve) * 10 - 5);
      agent.http.destroy();
    } finally {
      await s.close();
      await store.close();
    }
  }, 30_000);
});

/**
 * A client that reads the response's headers (the real cost is known and sent) and then resets
 * the connection mid-body: the response never finishes, but the work was done and reported.
 */
function readHeadersThenReset(url: string): Promise<void> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => s.write(`GET ${u.pathname} HTTP/1.1\r\nhost: x\r\n\r\n`));
    s.once('data', () => {
      s.resetAndDestroy();
      resolve();
    });
    s.once('error', reject);
  });
}

describe('a client resetting the connection after the headers', () => {
  // The handler reports its cost in the headers, then streams a body it never finishes in time.
  const slowBody = (res: import('node:http').ServerResponse) => {
    res.writeHead(200, { 'x-tokens-used': '500' });
    res.write('first chunk');
    const t = setTimeout(() => res.end('rest'), 5000);
    res.once('close', () => clearTimeout(t));
  };
  const servers: [string, () => Promise<{ url: string; close(): Promise<void> }>][] = [
    [
      'node:http',
      async () => {
        const limit = rateLimit({ ...llm, logger: false });
        const server = createServer(async (req, res) => {
          if (await limit(req, res)) slowBody(res);
        });
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/llm`, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
      },
    ],
    [
      'Express',
      async () => {
        const app = express();
        app.get('/llm', expressRateLimit({ ...llm, logger: false }), (_req, res) => slowBody(res));
        const server = await new Promise<Server>((r) => { const s = app.listen(0, '127.0.0.1', () => r(s)); });
        return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/llm`, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
      },
    ],
    [
      'Fastify',
      async () => {
        const app = Fastify();
        await app.register(sluiceRateLimit, { ...llm, logger: false });
        app.get('/llm', (_req, reply) => {
          const body = new Readable({ read() {} });
          body.push('first chunk');
          const t = setTimeout(() => body.push(null), 5000);
          body.once('close', () => clearTimeout(t));
          return reply.header('x-tokens-used', '500').send(body);
        });
        await app.listen({ port: 0, host: '127.0.0.1' });
        return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/llm`, close: async () => { app.server.closeAllConnections(); await app.close(); } };
      },
    ],
  ];
  it.each(servers)('%s: the cost the response reported is charged (no dodging it by a reset)', async (_name, start) => {
    const s = await start();
    try {
      await readHeadersThenReset(s.url);
      // The charge lands when the server sees the connection close (at once on loopback).
      await new Promise((res) => setTimeout(res, 200));
      const r = await fetch(s.url);
      await r.body?.cancel();
      // 500 units into a bucket of 10: refused for about 5,000 s.
      expect(r.status).toBe(429);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(4900);
    } finally {
      await s.close();
    }
  });
});
