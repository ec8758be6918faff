/**
 * Two server processes sharing one Redis (limits and analytics): the counts in /metrics (summed
 * over both, as Prometheus would) and in /analytics (either instance) equal what the test sent.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN } from './support.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = randomUUID();
const env = { ...process.env, REDIS_URL, STORE_PREFIX: `test:obs-mi:${run}:store:`, ANALYTICS_PREFIX: `test:obs-mi:${run}:an:`, LIMIT: '10', TOKEN };
const children: ChildProcess[] = [];
const urls: string[] = [];

beforeAll(async () => {
  const script = fileURLToPath(new URL('./fixtures/instance.ts', import.meta.url));
  for (let i = 0; i < 2; i++) {
    const child = fork(script, [], { execArgv: ['--import', 'tsx'], env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m) => resolve((m as { port: number }).port));
      child.once('exit', (code) => reject(new Error(`instance exited with ${code}`)));
    });
    urls.push(`http://127.0.0.1:${port}`);
  }
});

afterAll(async () => {
  await Promise.all(children.map((c) => new Promise((r) => (c.once('exit', r), c.kill('SIGTERM')))));
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`test:obs-mi:${run}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

function metricSum(texts: string[], line: string): number {
  let sum = 0;
  for (const t of texts) for (const l of t.split('\n')) if (l.startsWith(`${line} `)) sum += Number(l.slice(line.length + 1));
  return sum;
}

describe('observability across two instances on one Redis', () => {
  it('metrics summed over instances and shared analytics equal what was sent', async () => {
    const sent: Record<string, number> = { alice: 25, bob: 8, carol: 13 };
    const statuses: number[] = [];
    let i = 0;
    const jobs: Promise<void>[] = [];
    for (const [user, n] of Object.entries(sent)) {
      for (let k = 0; k < n; k++) {
        const url = urls[i++ % 2]!; // alternate instances
        jobs.push(fetch(`${url}/api/orders`, { headers: { 'x-user': user } }).then(async (r) => {
          statuses.push(r.status);
          await r.text();
        }));
      }
    }
    await Promise.all(jobs);
    const total = 25 + 8 + 13;
    // Limit 10 per user per minute shared through Redis: alice 10+15, bob 8+0, carol 10+3.
    const limited = { alice: 15, bob: 0, carol: 3 };
    expect(statuses.filter((s) => s === 429)).toHaveLength(18);
    expect(statuses.filter((s) => s === 200)).toHaveLength(total - 18);

    await Promise.all(urls.map((u) => fetch(`${u}/flush`).then((r) => r.text())));
    const auth = { authorization: `Bearer ${TOKEN}` };
    const texts = await Promise.all(urls.map((u) => fetch(`${u}/admin/metrics`, { headers: auth }).then((r) => r.text())));
    expect(metricSum(texts, 'sluice_decisions_total{route="api",policy="per-minute",outcome="allowed"}')).toBe(total - 18);
    expect(metricSum(texts, 'sluice_decisions_total{route="api",policy="per-minute",outcome="limited"}')).toBe(18);
    expect(metricSum(texts, 'sluice_responses_total{route="api",status="429"}')).toBe(18);
    expect(metricSum(texts, 'sluice_store_latency_seconds_count')).toBe(total);
    // Both instances served traffic (the sum is not one instance's count twice).
    expect(texts.every((t) => /outcome="allowed"\} [1-9]/.test(t))).toBe(true);

    for (const u of urls) {
      const s = await fetch(`${u}/admin/analytics/summary?window=5m`, { headers: auth }).then((r) => r.json());
      expect(s.total).toBe(total);
      expect(s.limited).toBe(18);
      expect(s.topConsumers).toEqual([{ id: 'alice', count: limited.alice }, { id: 'carol', count: limited.carol }]);
      expect(s.topIps).toEqual([{ id: '127.0.0.1', count: 18 }]);
      expect(s.endpoints).toEqual([{ route: 'api', status: 200, count: total - 18 }, { route: 'api', status: 429, count: 18 }]);
      expect(s.nearLimit.map((n: { consumer: string }) => n.consumer).sort()).toEqual(['alice', 'bob', 'carol']); // bob used 8 of 10: 80 %
    }
    const bob = await fetch(`${urls[1]}/admin/analytics/consumers/bob?window=1h`, { headers: auth }).then((r) => r.json());
    expect(bob).toMatchObject({ consumer: 'bob', total: 8, limited: 0 });
    expect(bob.nearLimit).toEqual([{ policy: 'per-minute', usage: 0.8 }]);
  });
});
