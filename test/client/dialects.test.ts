/**
 * Reset dialects end to end: a 429 without Retry-After waits for the reset it carries, and a limit
 * that comes without a window is a budget per reset period (never unlimited after the reset).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createClient, type Client } from '../../src/client.js';
import { startStrictServer, type StrictServer } from './support/strict-server.js';

let server: StrictServer | undefined;
let client: Client | undefined;
afterEach(async () => {
  await client?.close();
  await server?.close();
  client = server = undefined;
});
const run = (c: Client, n: number) => Promise.all(Array.from({ length: n }, (_, i) => c.fetch(`/x/${i}`).then(async (r) => (await r.text(), r.status))));

describe('a 429 without Retry-After waits for the reset it carries', () => {
  it('GitHub style (epoch-seconds reset), quota already spent at start: waits the reset, not a minute', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 5, windowMs: 1000, match: '/' }], headers: 'x-ratelimit', retryAfter: 'none' });
    // Another client spent the quota just before us.
    for (let i = 0; i < 5; i++) await fetch(`${server.url}/spent/${i}`).then((r) => r.text());
    client = createClient({ baseUrl: server.url });
    const waits: number[] = [];
    client.on('throttled', (e) => waits.push(e.waitMs));
    const statuses = await run(client, 12);
    expect(statuses.every((s) => s === 200)).toBe(true);
    // Epoch seconds are rounded up by the server: at most ~2 s, never the old 60 s default.
    expect(waits.length).toBeGreaterThan(0);
    expect(Math.max(...waits)).toBeLessThanOrEqual(2500);
  }, 30_000);

  it('RingCentral style without Retry-After: waits X-Rate-Limit-Window', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 3, windowMs: 1000, match: '/' }], headers: 'ringcentral', retryAfter: 'none' });
    for (let i = 0; i < 3; i++) await fetch(`${server.url}/spent/${i}`).then((r) => r.text());
    client = createClient({ baseUrl: server.url });
    const waits: number[] = [];
    client.on('throttled', (e) => waits.push(e.waitMs));
    expect((await run(client, 6)).every((s) => s === 200)).toBe(true);
    expect(waits).toEqual([1000]);
  }, 30_000);
});

describe('a limit without a window is a budget per reset period', () => {
  it('what the server says remains goes now, not spread over the time to the reset', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 5, windowMs: 2000, fixed: true, match: '/' }], headers: 'x-ratelimit-delta', retryAfter: 'none' });
    client = createClient({ baseUrl: server.url });
    expect((await run(client, 5)).every((s) => s === 200)).toBe(true);
    const a = server.groups.api!.accepted;
    // The old client spread the 4 left over the 2 s to the reset (~400 ms apart).
    expect(a[4]! - a[0]!).toBeLessThan(600);
  }, 30_000);

  it('fixed window 5/s, delta-seconds reset, penalty box: after the reset only the limit goes out', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 5, windowMs: 1000, fixed: true, match: '/' }], headers: 'x-ratelimit-delta', retryAfter: 'none' });
    client = createClient({ baseUrl: server.url, concurrency: 16 });
    const statuses = await run(client, 30);
    expect(statuses.every((s) => s === 200)).toBe(true);
    // Learning the group costs at most one 429; the old client sent its whole concurrency after
    // the first reset (37 429s, 5 calls failed).
    expect(server.total429()).toBeLessThanOrEqual(1);
    expect(server.groups.api!.penaltyRestarts).toBe(0);
  }, 30_000);
});

/** A fixed window of `limit` per `windowMs` opened by the first request after the last one closed. */
function openedByFirst(limit: number, windowMs: number) {
  let start = -Infinity;
  let count = 0;
  return (now: number) => {
    if (now >= start + windowMs) {
      start = now;
      count = 0;
    }
    const ok = count < limit;
    if (ok) count++;
    return { ok, start, count };
  };
}

describe('epoch-second resets of windows opened by the first request (express-rate-limit legacy)', () => {
  /**
   * A fixed window opened by the first request after the last one closed, `X-RateLimit-Reset` in
   * epoch seconds rounded up, answers 5 ms after arrival; on a fake clock, so times are exact.
   */
  function legacyServer(limit: number, windowMs: number) {
    const take = openedByFirst(limit, windowMs);
    const arrivals: { at: number; ok: boolean }[] = [];
    const fetchImpl = async (): Promise<Response> => {
      const now = Date.now();
      const { ok, start, count } = take(now);
      arrivals.push({ at: now, ok });
      const headers: Record<string, string> = {
        'x-ratelimit-limit': String(limit),
        'x-ratelimit-remaining': String(limit - count),
        'x-ratelimit-reset': String(Math.ceil((start + windowMs) / 1000)),
      };
      if (!ok) headers['retry-after'] = String(Math.ceil((start + windowMs - now) / 1000));
      await new Promise((r) => setTimeout(r, 5));
      return new Response(ok ? '{"ok":true}' : '{"error":"rate limited"}', { status: ok ? 200 : 429, headers });
    };
    return { fetchImpl, arrivals };
  }

  async function runOnFakeClock(limit: number, windowMs: number, calls: number) {
    // 100 ms past a whole second: the first window's reset rounds up 900 ms.
    vi.useFakeTimers({ now: 1_767_268_800_100, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] });
    try {
      const server = legacyServer(limit, windowMs);
      client = createClient({ baseUrl: 'http://legacy.test', fetch: server.fetchImpl });
      const done = Promise.all(Array.from({ length: calls }, (_, i) => client!.fetch(`/x/${i}`).then(async (r) => (await r.text(), r.status))));
      let statuses: number[] | undefined;
      void done.then((s) => (statuses = s));
      for (let t = 0; t < 60_000 && statuses === undefined; t += 10) await vi.advanceTimersByTimeAsync(10);
      return { statuses, arrivals: server.arrivals };
    } finally {
      vi.useRealTimers();
    }
  }

  it('1 s windows: the next window goes one window after the answer that opened this one, not at the rounded-up reset', async () => {
    const { statuses, arrivals } = await runOnFakeClock(5, 1000, 20);
    expect(statuses).toEqual(Array(20).fill(200));
    expect(arrivals.filter((a) => !a.ok)).toEqual([]);
    // Each window opens by its first accepted request (every 5th): the old client waited for the
    // whole-second reset, 1.9 s after the first window opened and 2 s after each later one.
    const opens = arrivals.filter((_, i) => i % 5 === 0).map((a) => a.at);
    for (let k = 1; k < opens.length; k++) expect(opens[k]! - opens[k - 1]!).toBeLessThan(1100);
  }, 30_000);

  it('a window that is no whole number of seconds (1.5 s) costs at most one 429, and every call is done', async () => {
    const { statuses, arrivals } = await runOnFakeClock(5, 1500, 20);
    expect(statuses).toEqual(Array(20).fill(200));
    expect(arrivals.filter((a) => !a.ok).length).toBeLessThanOrEqual(1);
  }, 30_000);
});

describe('Retry-After as an HTTP-date only, windows opened by the first request', () => {
  /**
   * A fixed window of `limit` per `windowMs` opened by the first request after the last one closed,
   * no quota header, a 429 carries `Retry-After: <IMF-fixdate>` rounded up to the whole second;
   * answers 5 ms after arrival; on a fake clock, so times are exact.
   */
  function dateServer(limit: number, windowMs: number) {
    const take = openedByFirst(limit, windowMs);
    const arrivals: { at: number; ok: boolean; windowEnd: number; date: number }[] = [];
    const fetchImpl = async (): Promise<Response> => {
      const now = Date.now();
      const { ok, start } = take(now);
      const date = Math.ceil((start + windowMs) / 1000) * 1000;
      arrivals.push({ at: now, ok, windowEnd: start + windowMs, date });
      const headers: Record<string, string> = ok ? {} : { 'retry-after': new Date(date).toUTCString() };
      await new Promise((r) => setTimeout(r, 5));
      return new Response(ok ? '{"ok":true}' : '{"message":"rate limited"}', { status: ok ? 200 : 429, headers });
    };
    return { fetchImpl, arrivals };
  }

  it('the window run refused resumes with one request where its own sends end the window, not at the rounded-up date', async () => {
    // 100 ms past a whole second: the first window ends 100 ms past one too, its date 900 ms later.
    vi.useFakeTimers({ now: 1_767_268_800_100, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] });
    try {
      const server = dateServer(10, 1000);
      client = createClient({ baseUrl: 'http://date.test', fetch: server.fetchImpl });
      const calls = 60;
      const done = Promise.all(Array.from({ length: calls }, (_, i) => client!.fetch(`/x/${i}`).then(async (r) => (await r.text(), r.status))));
      let statuses: number[] | undefined;
      void done.then((s) => (statuses = s));
      for (let t = 0; t < 60_000 && statuses === undefined; t += 10) await vi.advanceTimersByTimeAsync(10);
      expect(statuses).toEqual(Array(calls).fill(200));
      const arrivals = server.arrivals;
      const first = arrivals.findIndex((a) => !a.ok);
      expect(first).toBeGreaterThan(0);
      const refused = arrivals[first]!;
      // The date is far past the window's end here (what makes the case), and the request after the
      // refusal came within 100 ms of that end: the old client waited for the date (up to 1 s more).
      expect(refused.date - refused.windowEnd).toBeGreaterThan(300);
      const next = arrivals[first + 1]!;
      expect(next.at).toBeGreaterThanOrEqual(refused.windowEnd);
      expect(next.at - refused.windowEnd).toBeLessThan(100);
      expect(next.ok).toBe(true);
      // 429s stay within the blind rows' 5 % of requests.
      expect(arrivals.filter((a) => !a.ok).length).toBeLessThanOrEqual(Math.floor(0.05 * arrivals.length));
    } finally {
      vi.useRealTimers();
    }
  }, 30_000);
});
