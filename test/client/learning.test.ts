/**
 * Learning from 429s alone: servers that send no rate-limit headers (nginx `limit_req`), or only
 * `Retry-After`. The client finds the rate by itself, pauses briefly and with backoff, resumes one
 * request at a time, and a throttled call keeps its place.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type Client } from '../../src/client.js';
import { startLeakyServer, type LeakyServer } from './support/leaky-server.js';
import { startStrictServer, type StrictServer } from './support/strict-server.js';

let leaky: LeakyServer | undefined;
let server: StrictServer | undefined;
let client: Client | undefined;
afterEach(async () => {
  await client?.close();
  await leaky?.close();
  await server?.close();
  client = leaky = server = undefined;
});

const run = (c: Client, paths: string[]) => Promise.all(paths.map((p) => c.fetch(p).then(async (r) => (await r.text(), r.status))));
const paths = (n: number, prefix = '/x') => Array.from({ length: n }, (_, i) => `${prefix}/${i}`);

describe('a strict leaky bucket that sends bare 429s (nginx limit_req, no burst)', () => {
  it('unconfigured: every call done, 429s a small share of requests, the first pause about 1 s', async () => {
    leaky = await startLeakyServer({ ratePerSecond: 20 });
    client = createClient({ baseUrl: leaky.url });
    const waits: number[] = [];
    client.on('throttled', (e) => waits.push(e.waitMs));
    const statuses = await run(client, paths(80));
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(leaky.accepted).toBe(80);
    // Discovery costs a few refusals, then about one per 50 requests (AIMD).
    expect(leaky.refused).toBeLessThanOrEqual(8);
    expect(waits.length).toBe(leaky.refused);
    expect(waits[0]).toBeGreaterThanOrEqual(500);
    expect(waits[0]).toBeLessThanOrEqual(1000);
  }, 30_000);

  it('with Retry-After: 1 the pause ends with one request, not the whole queue', async () => {
    leaky = await startLeakyServer({ ratePerSecond: 20, retryAfter: '1' });
    client = createClient({ baseUrl: leaky.url });
    const statuses = await run(client, paths(60));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(leaky.refused).toBeLessThanOrEqual(6);
  }, 30_000);

  it('configured with the exact rate: the default burst is refused once, then requests are spread evenly', async () => {
    leaky = await startLeakyServer({ ratePerSecond: 10 });
    client = createClient({ baseUrl: leaky.url, groups: { api: { limit: 10, windowMs: 1000 } }, defaultGroup: 'api' });
    const statuses = await run(client, paths(25));
    expect(statuses.every((s) => s === 200)).toBe(true);
    // The first burst (25 % of the budget back to back: 3) is refused but for one; then burst is
    // off and at most a few spaced requests meet arrival jitter on a loaded machine.
    expect(leaky.refused).toBeLessThanOrEqual(5);
    expect(client.lanes()[0]).toMatchObject({ group: 'api', source: 'config' });
  }, 30_000);
});

describe('a window counter that sends bare 429s (10 per fixed second, any spacing)', () => {
  it('unconfigured: every call done, few 429s: the rate is held to what a second really accepted', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 10, windowMs: 1000, penaltyMs: 1, fixed: true, match: '/' }], headers: 'none', retryAfter: 'none' });
    client = createClient({ baseUrl: server.url });
    const statuses = await run(client, paths(50));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(server.total429()).toBeLessThanOrEqual(6);
  }, 30_000);
});

describe('pauses', () => {
  it('repeated 429s without a wait back off exponentially from defaultRetryAfterMs, with jitter', async () => {
    let n = 0;
    server = await startStrictServer({ groups: [{ name: 'api', limit: 1000, windowMs: 1000, match: '/' }], headers: 'none', failHook: () => (++n <= 3 ? 429 : undefined) });
    client = createClient({ baseUrl: server.url, defaultRetryAfterMs: 100 });
    const waits: number[] = [];
    client.on('throttled', (e) => waits.push(e.waitMs));
    expect((await client.fetch('/x')).status).toBe(200);
    expect(waits).toHaveLength(3);
    waits.forEach((w, i) => {
      expect(w).toBeGreaterThanOrEqual(50 * 2 ** i);
      expect(w).toBeLessThanOrEqual(100 * 2 ** i);
    });
  });

  it('a decimal Retry-After is honoured as given, not raised to minPauseMs', async () => {
    let n = 0;
    server = await startStrictServer({
      groups: [{ name: 'api', limit: 1000, windowMs: 1000, match: '/' }],
      headers: 'none',
      failHook: () => (++n === 1 ? 429 : undefined),
      headerHook: (_req, status) => (status === 429 ? { 'retry-after': '0.3' } : undefined),
    });
    client = createClient({ baseUrl: server.url });
    const waits: number[] = [];
    client.on('throttled', (e) => waits.push(e.waitMs));
    expect((await client.fetch('/x')).status).toBe(200);
    expect(waits).toEqual([300]);
  });

  it('a throttled call keeps its place at the head of its lane', async () => {
    let n = 0;
    const order: string[] = [];
    server = await startStrictServer({
      groups: [{ name: 'api', limit: 1000, windowMs: 1000, match: '/' }],
      headers: 'none',
      failHook: (req) => (order.push(req.url ?? ''), ++n === 1 ? 429 : undefined),
    });
    client = createClient({ baseUrl: server.url, groups: { api: { limit: 1000, windowMs: 1000 } }, defaultGroup: 'api', concurrency: 1, defaultRetryAfterMs: 50 });
    await run(client, ['/a', '/b', '/c', '/d']);
    expect(order).toEqual(['/a', '/a', '/b', '/c', '/d']);
  });

  it('a window-5 penalty box with only Retry-After: nothing is sent during a pause, every call done', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 5, windowMs: 1000, match: '/' }], headers: 'none', retryAfter: 'seconds' });
    client = createClient({ baseUrl: server.url });
    const sent: number[] = [];
    const pauses: [number, number][] = [];
    client.on('sent', () => sent.push(Date.now()));
    client.on('throttled', () => pauses.push([Date.now(), client!.lanes()[0]!.pausedUntil]));
    const statuses = await run(client, paths(20));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(pauses.length).toBeGreaterThan(0);
    for (const [from, to] of pauses) expect(sent.filter((t) => t > from && t < to)).toEqual([]);
    // Only requests already in flight when a 429 came can restart the penalty.
    expect(server.groups.api!.penaltyRestarts).toBeLessThanOrEqual(2);
  }, 30_000);
});
