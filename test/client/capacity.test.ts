/**
 * What users of Bottleneck and p-queue expect (per-call cost, several credentials, a bounded
 * queue), and bounded memory against a server that names a new group in every response.
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { SluiceConfigError } from '../../src/core/errors.js';
import { createClient, QueueFullError, type Client } from '../../src/client.js';
import { startStrictServer, type StrictServer } from './support/strict-server.js';

let server: StrictServer | undefined;
let client: Client | undefined;
afterEach(async () => {
  await client?.close();
  await server?.close();
  client = server = undefined;
});

describe('per-call cost', () => {
  it('a call of cost 5 takes 5 units of a 10-per-second budget', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 10, windowMs: 1000, match: '/' }], headers: 'none' });
    client = createClient({ baseUrl: server.url, groups: { api: { limit: 10, windowMs: 1000 } }, defaultGroup: 'api' });
    const statuses = await Promise.all(Array.from({ length: 4 }, (_, i) => client!.fetch(`/x/${i}`, { cost: 5 }).then((r) => r.status)));
    expect(statuses).toEqual([200, 200, 200, 200]);
    // Two heavy calls per window, not four.
    expect(server.maxInWindow('api')).toBe(2);
  });

  it('a cost that is not a positive integer, or above the group limit, is a clear error', async () => {
    client = createClient({ baseUrl: 'http://127.0.0.1:9', groups: { api: { limit: 10, windowMs: 1000 } }, defaultGroup: 'api' });
    await expect(client.fetch('/x', { cost: 0 })).rejects.toThrow(SluiceConfigError);
    await expect(client.fetch('/x', { cost: 1.5 })).rejects.toThrow(/cost/);
    await expect(client.fetch('/x', { cost: 11 })).rejects.toThrow(/above the limit of group "api"/);
  });
});

describe('several credentials in one client', () => {
  it('a lane per credential x group: each user has the whole budget', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 5, windowMs: 1000, match: '/' }], headers: 'none' });
    client = createClient({ baseUrl: server.url, groups: { api: { limit: 5, windowMs: 1000 } }, defaultGroup: 'api' });
    const call = (user: string, i: number) =>
      client!.fetch(`/x/${user}/${i}`, { credential: user, headers: { authorization: `Bearer ${user}` } }).then((r) => r.status);
    const statuses = await Promise.all(['alice', 'bob'].flatMap((u) => Array.from({ length: 5 }, (_, i) => call(u, i))));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(server.total429()).toBe(0);
    expect(client.lanes().map((l) => `${l.credential}|${l.group}`).sort()).toEqual(['alice|api', 'bob|api']);
    // Ten calls inside one window: each user had its own 5, not one shared 5.
    const a = server.groups.api!.accepted;
    expect(a[a.length - 1]! - a[0]!).toBeLessThan(1000);
  });

  it('a per-call credential cannot be combined with the client auth', async () => {
    client = createClient({ baseUrl: 'http://127.0.0.1:9', auth: { tokenUrl: '/t', grant: { grant_type: 'client_credentials' } } });
    await expect(client.fetch('/x', { credential: 'bob' })).rejects.toThrow(/credential/);
  });
});

describe('queue high-water mark', () => {
  it('calls beyond maxQueued fail at once with QueueFullError; the others complete', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 2, windowMs: 1000, match: '/' }], headers: 'none' });
    client = createClient({ baseUrl: server.url, groups: { api: { limit: 2, windowMs: 1000 } }, defaultGroup: 'api', maxQueued: 3 });
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => client!.fetch(`/x/${i}`)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    const errors = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as Error);
    expect(errors).toHaveLength(2);
    for (const e of errors) {
      expect(e).toBeInstanceOf(QueueFullError);
      expect(e.message).toContain('maxQueued');
    }
    // Room again once calls finished.
    expect((await client.fetch('/y')).status).toBe(200);
  });
});

describe('bounded memory under a hostile server', () => {
  it('a new group name in every response: learned groups stay capped and idle lanes are dropped', async () => {
    let n = 0;
    const fetchImpl = async () =>
      new Response('{}', { headers: { 'x-rate-limit-group': `g${++n}`, 'x-rate-limit-limit': '1000', 'x-rate-limit-remaining': '999', 'x-rate-limit-window': '1' } });
    client = createClient({ baseUrl: 'http://api.test', fetch: fetchImpl, maxLearnedGroups: 50 });
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(Array.from({ length: 250 }, (_, i) => client!.fetch(`/x${batch}-${i}`).then((r) => r.text())));
      expect(client.lanes().length).toBeLessThanOrEqual(52);
    }
    expect(n).toBe(5000);
  }, 30_000);

  it('memory stays flat over 100k responses that each name a new group (heap after GC, 20k vs 100k)', async () => {
    // Regression: +245 MB after 6.5k responses at first; then still +2.5 KB per response (a
    // deadline timer and two signals kept per call for timeoutMs, and every dropped group's budget
    // left in the client's own store): 43 MB at 10k, 286 MB at 100k.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    let n = 0;
    const fetchImpl = async () =>
      new Response('{}', { headers: { 'x-rate-limit-group': `g${++n}`, 'x-rate-limit-limit': '1000', 'x-rate-limit-remaining': '999', 'x-rate-limit-window': '1' } });
    client = createClient({ baseUrl: 'http://api.test', fetch: fetchImpl, maxLearnedGroups: 100 });
    const heap: number[] = [];
    for (let batch = 1; batch <= 100; batch++) {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => client!.fetch(`/x${batch}-${i}`).then((r) => r.text())));
      expect(client.lanes().length).toBeLessThanOrEqual(102);
      if (batch === 20 || batch === 100) {
        await new Promise((r) => setTimeout(r, 1100)); // the last groups' windows end
        gc();
        heap.push(process.memoryUsage().heapUsed);
      }
    }
    expect(n).toBe(100_000);
    const growthMb = ((heap[1] as number) - (heap[0] as number)) / 1e6;
    console.log(`heap after GC: ${((heap[0] as number) / 1e6).toFixed(1)} MB at 20k responses, ${((heap[1] as number) / 1e6).toFixed(1)} MB at 100k`);
    expect(growthMb).toBeLessThan(8);
  }, 300_000);
});
