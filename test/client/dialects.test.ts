/**
 * Reset dialects end to end: a 429 without Retry-After waits for the reset it carries, and a limit
 * that comes without a window is a budget per reset period (never unlimited after the reset).
 */
import { afterEach, describe, expect, it } from 'vitest';
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
