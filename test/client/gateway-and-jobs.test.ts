/**
 * The client against the Sluice server side (sluice/http on node:http, IETF headers), durable jobs
 * through BullMQ paced the same way, and the progress bar fed by the events.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, createJobQueue, progressBar, type Client } from '../../src/client.js';
import { rateLimit } from '../../src/http.js';
import { startStrictServer, type StrictServer } from './support/strict-server.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
let client: Client | undefined;
let strict: StrictServer | undefined;
let gateway: Server | undefined;
afterEach(async () => {
  await client?.close();
  await strict?.close();
  if (gateway) await new Promise((r) => (gateway!.closeAllConnections(), gateway!.close(r)));
  client = undefined;
  strict = undefined;
  gateway = undefined;
});

describe('against the sluice gateway (sluice/http)', () => {
  it('learns the limit from its IETF headers alone: at most one 429, every call done', async () => {
    const limit = rateLimit({ rateLimitBy: 'all', requestsAllowed: 10, timeWindowMinutes: 1 / 60, headerMode: 'ietf' });
    let ok = 0;
    let refused = 0;
    gateway = createServer(async (req, res) => {
      if (!(await limit(req, res))) {
        refused++;
        return;
      }
      ok++;
      res.end('ok');
    });
    await new Promise<void>((r) => gateway!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
    client = createClient({ baseUrl: url, minPauseMs: 200 });
    const statuses = await Promise.all(Array.from({ length: 30 }, (_, i) => client!.fetch(`/v1/${i}`).then(async (r) => (await r.text(), r.status))));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(ok).toBe(30);
    expect(refused).toBeLessThanOrEqual(1);
  });
});

describe('durable jobs through BullMQ', () => {
  it('K queued jobs are processed through the pacer with zero 429s', async () => {
    strict = await startStrictServer({ groups: [{ name: 'sms', limit: 10, windowMs: 1000, match: '/sms' }], headers: 'ringcentral' });
    client = createClient({ baseUrl: strict.url, groups: { sms: { limit: 10, windowMs: 1000 } }, routes: [{ method: 'POST', path: '/sms', group: 'sms' }] });
    const run = randomUUID().slice(0, 8);
    const q = await createJobQueue({ client, connection: { url: REDIS_URL } as never, name: `sms-${run}`, prefix: `test-client-bull-${run}` });
    try {
      const done = new Promise<void>((resolve) => {
        let n = 0;
        q.worker!.on('completed', () => ++n === 25 && resolve());
      });
      await q.addBulk(Array.from({ length: 25 }, (_, i) => ({ method: 'POST', url: '/sms', body: JSON.stringify({ to: `+1555000${i}` }), idempotent: true })));
      await done;
      expect(strict.groups.sms!.ok).toBe(25);
      expect(strict.total429()).toBe(0);
      expect(await q.queue.getCompletedCount()).toBe(25);
    } finally {
      await q.queue.obliterate({ force: true }).catch(() => undefined);
      await q.close();
    }
  }, 30_000);
});

describe('progress bar', () => {
  it('counts done, failed, throttled and retried from the events, and prints the final line', async () => {
    strict = await startStrictServer({ groups: [{ name: 'api', limit: 3, windowMs: 500, match: '/' }], headers: 'none', failHook: (_r, n) => (n === 2 ? 503 : undefined) });
    client = createClient({ baseUrl: strict.url, groups: { api: { limit: 6, windowMs: 500 } }, defaultGroup: 'api', concurrency: 1, minPauseMs: 100, retry: { baseMs: 5, capMs: 10 } });
    const out: string[] = [];
    const bar = progressBar(client, { total: 6, stream: { write: (s: string) => out.push(s), isTTY: false }, label: 'sms' });
    await Promise.all(Array.from({ length: 6 }, (_, i) => client!.fetch(`/x/${i}`)));
    bar.stop();
    expect(bar.counts.done).toBe(6);
    expect(bar.counts.ok).toBe(6);
    expect(bar.counts.throttled).toBeGreaterThanOrEqual(1);
    expect(bar.counts.retried).toBeGreaterThanOrEqual(2);
    expect(out[out.length - 1]).toMatch(/^sms \[#{30}\] 6\/6 ok 6 failed 0 throttled \d+ retried \d+ /);
  });
});
