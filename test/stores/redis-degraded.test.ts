/**
 * Degraded mode on a real redis-server this suite owns (ports 7100-7101): Redis killed, or frozen
 * with SIGSTOP (it accepts nothing and answers nothing, the costly case), under a FallbackStore
 * and under the gateway with `onStoreError: local`. While Redis fails, limits hold at their local
 * share with no error reaching the caller; once it answers again decisions are Redis's, exact.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/gateway/config.js';
import { startGateway } from '../../src/gateway/server.js';
import { createLimiter } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { FallbackStore, type StoreHealthEvent } from '../../src/stores/fallback-store.js';
import { echoUpstream, quiet } from '../gateway/support.js';
import { skipWithoutRedis, startRedis, type RedisServer } from '../support/redis-server.js';

const skip = skipWithoutRedis('redis-degraded');
const servers: RedisServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop();
});

const until = async (cond: () => boolean | Promise<boolean>, ms = 15_000) => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};
const kinds = (events: StoreHealthEvent[]) => events.map((e) => e.type + ('to' in e ? `:${e.to}` : ''));

describe.skipIf(skip)('FallbackStore over a real Redis', () => {
  it('Redis killed: local share enforced with no error; restarted: back to Redis, exact', async () => {
    const server = await startRedis(7100);
    servers.push(server);
    const events: StoreHealthEvent[] = [];
    const store = new FallbackStore({
      store: new RedisStore({ url: server.url, timeoutMs: 250 }),
      expectedInstances: 2,
      breaker: { failureThreshold: 3, probeIntervalMs: 100 },
      onEvent: (e) => events.push(e),
    });
    const l = createLimiter({ limit: 10, windowMs: 60_000, store });
    try {
      for (let i = 0; i < 4; i++) expect((await l.consume('a')).allowed).toBe(true);
      await server.kill();
      const outage = [];
      for (let i = 0; i < 12; i++) outage.push(await l.consume('a'));
      // limit / expectedInstances = 5, counted from the switch; no decision rejected.
      expect(outage.filter((d) => d.allowed)).toHaveLength(5);
      expect(outage[11]).toMatchObject({ allowed: false, limit: 5 });
      expect(kinds(events)).toEqual(['switch:local', 'circuit-open']);

      servers.push(await startRedis(7100, [], server.dir));
      await until(() => !store.usingLocal && !store.circuitOpen);
      expect(kinds(events)).toEqual(['switch:local', 'circuit-open', 'switch:shared', 'circuit-closed']);
      // Redis restarted empty (no persistence): a fresh key gets exactly the full limit from it.
      const after = [];
      for (let i = 0; i < 12; i++) after.push(await l.consume('b'));
      expect(after.filter((d) => d.allowed)).toHaveLength(10);
      expect(after[11]).toMatchObject({ allowed: false, limit: 10 });
    } finally {
      await store.close();
    }
  }, 40_000);

  it('Redis frozen (SIGSTOP): after the threshold no decision waits for it; SIGCONT: back to Redis', async () => {
    const server = await startRedis(7101);
    servers.push(server);
    const redis = new RedisStore({ url: server.url, timeoutMs: 250 });
    const store = new FallbackStore({ store: redis, breaker: { failureThreshold: 3, probeIntervalMs: 100 } });
    // One unit refills every 3.6 s: the counts below do not drift during the test.
    const l = createLimiter({ limit: 1000, windowMs: 3_600_000, store });
    try {
      expect((await l.consume('warm')).allowed).toBe(true);
      server.process.kill('SIGSTOP');
      // Three decisions wait out timeoutMs (250 ms) and open the circuit.
      await Promise.all([l.consume('x1'), l.consume('x2'), l.consume('x3')]);
      expect(store.circuitOpen).toBe(true);
      const failuresAtOpen = store.stats.sharedFailures;
      const t0 = performance.now();
      for (let i = 0; i < 100; i++) expect((await l.consume('y')).allowed).toBe(true);
      // None of the 100 went to Redis (each would have cost 250 ms: 25 s in all).
      expect(store.stats.sharedFailures).toBe(failuresAtOpen);
      expect(store.stats.shortCircuited).toBe(100);
      expect(performance.now() - t0).toBeLessThan(5000);
      server.process.kill('SIGCONT');
      await until(() => !store.circuitOpen);
      const d = await l.consume('warm');
      expect(d.remaining).toBe(998); // Redis's own count: the key 'warm' it held before the freeze
    } finally {
      if (server.process.exitCode === null) server.process.kill('SIGCONT');
      await store.close();
    }
  }, 40_000);
});

describe.skipIf(skip)('gateway with onStoreError: local on a real Redis', () => {
  it('Redis killed: local policy enforced at limit / expectedInstances, allow policy open, switch counted; then exact again', async () => {
    const server = await startRedis(7102);
    servers.push(server);
    const up = await echoUpstream();
    const gw = await startGateway({
      logger: quiet,
      port: 0,
      config: validateConfig(
        {
          store: { type: 'redis', url: server.url, prefix: 'deg:', expectedInstances: 2, breaker: { failureThreshold: 2, probeIntervalMs: 100 } },
          upstreams: { api: { url: up.url } },
          policies: {
            strictLocal: { requestsAllowed: 6, timeWindowMinutes: 1, rateLimitBy: 'all', onStoreError: 'local' },
            open: { requestsAllowed: 6, timeWindowMinutes: 1, rateLimitBy: 'all' },
          },
          routes: [
            { path: '/local', upstream: 'api', policies: ['strictLocal'] },
            { path: '/open', upstream: 'api', policies: ['open'] },
          ],
          observability: { logs: { enabled: false } },
        },
        {},
      ),
    });
    const statuses = async (path: string, n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const r = await fetch(gw.url + path);
        await r.arrayBuffer();
        out.push(r.status);
      }
      return out;
    };
    try {
      expect(await statuses('/local', 2)).toEqual([200, 200]);
      await server.kill();
      // 6 / 2 instances = 3 locally; the allow policy lets everything through.
      expect(await statuses('/local', 5)).toEqual([200, 200, 200, 429, 429]);
      expect(await statuses('/open', 8)).toEqual(Array(8).fill(200));
      const metrics = await (gw.observer?.metrics.text() ?? Promise.resolve(''));
      expect(metrics).toMatch(/sluice_store_health_events_total\{event="switch_local"\} 1\b/);
      expect(metrics).toMatch(/sluice_store_health_events_total\{event="circuit_open"\} 1\b/);
      expect(metrics).toMatch(/sluice_store_circuit_open 1\b/);

      servers.push(await startRedis(7102, [], server.dir));
      await until(async () => /sluice_store_circuit_open 0\b/.test((await gw.observer?.metrics.text()) ?? ''));
      // Back on Redis (restarted empty): exactly the full limit.
      expect(await statuses('/local', 7)).toEqual([200, 200, 200, 200, 200, 200, 429]);
      expect(await gw.observer?.metrics.text()).toMatch(/sluice_store_health_events_total\{event="switch_shared"\} 1\b/);
    } finally {
      await gw.close();
      await up.close();
    }
  }, 60_000);
});
