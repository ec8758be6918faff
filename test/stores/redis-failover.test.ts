/**
 * Failover with real processes on loopback (ports 7110-7149):
 * - Redis Sentinel: a primary, its replica and three sentinels; the primary is SIGKILLed under
 *   load and the sentinels promote the replica. RedisStore (given the sentinels) follows.
 * - Redis Cluster: 3 primaries + 3 replicas; a primary is SIGKILLed under load and its replica
 *   takes over its slots. RedisStore (given seed nodes) follows.
 * In both: nothing crashes, every failure is a StoreError and failures stop within the failover
 * window (kill → first success again, plus one timeout), and limits are exact afterwards.
 * Also here: analytics of two gateways on one Cluster are shared (the connection factory gives
 * them a Cluster client; they used to stay per process).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/core/errors.js';
import { validateConfig } from '../../src/gateway/config.js';
import { startGateway } from '../../src/gateway/server.js';
import { createLimiter, type Limiter } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { slotOf } from '../../src/stores/redis/keys.js';
import { echoUpstream, quiet } from '../gateway/support.js';
import { skipWithoutRedis } from '../support/redis-server.js';
import { hasRedisSentinel, startCluster, startSentinelSetup, waitFor, type ClusterSetup, type SentinelSetup } from '../support/redis-topology.js';

const skip = skipWithoutRedis('redis-failover');
if (!skip && !hasRedisSentinel()) throw new Error('redis-failover: redis-sentinel is not installed (apt-get install redis-sentinel; .ci/run installs it)');

/**
 * Generous, so a loaded CI machine does not time decisions out before the kill; failures must
 * still stop within one timeout of the first success on the new primary.
 */
const TIMEOUT_MS = 2000;

interface Outcome {
  readonly t: number;
  readonly ok: boolean;
  readonly error?: unknown;
}

/** `workers` loops consuming distinct keys until `stop()`; every outcome is timestamped. */
function load(limiter: Limiter, workers: number) {
  const outcomes: Outcome[] = [];
  let stopped = false;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; !stopped; i++) {
      try {
        await limiter.consume(`w${w}:${i % 200}`);
        outcomes.push({ t: Date.now(), ok: true });
      } catch (error) {
        outcomes.push({ t: Date.now(), ok: false, error });
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  });
  return {
    outcomes,
    okSince: (t: number) => outcomes.filter((o) => o.ok && o.t > t).length,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** Every failure is a StoreError of the outage kinds, and none comes after `windowEnd`. */
function expectBoundedFailures(outcomes: readonly Outcome[], killedAt: number, timeoutMs: number) {
  const failures = outcomes.filter((o) => !o.ok);
  for (const f of failures) {
    expect(f.error).toBeInstanceOf(StoreError);
    expect(['STORE_UNAVAILABLE', 'STORE_TIMEOUT']).toContain((f.error as StoreError).code);
    expect(f.t).toBeGreaterThanOrEqual(killedAt);
  }
  const recovered = outcomes.find((o) => o.ok && o.t > killedAt && outcomes.some((f) => !f.ok && f.t < o.t));
  const firstOkAfterKill = recovered?.t ?? Infinity;
  // Decisions in flight when the new primary took over may still fail, within one timeout.
  const late = failures.filter((f) => f.t > firstOkAfterKill + timeoutMs + 250);
  expect(late).toEqual([]);
  return { failures: failures.length, windowMs: firstOkAfterKill - killedAt };
}

async function exactly(limit: number, store: RedisStore, key: string): Promise<number> {
  const l = createLimiter({ name: `exact-${key}`, limit, windowMs: 3_600_000, store });
  let ok = 0;
  for (let i = 0; i < limit + 10; i++) if ((await l.consume(key)).allowed) ok++;
  return ok;
}

describe.skipIf(skip)('Redis Sentinel failover', () => {
  let setup: SentinelSetup;
  beforeAll(async () => {
    setup = await startSentinelSetup(7110, 7111, [7120, 7121, 7122]);
  }, 60_000);
  afterAll(async () => {
    await setup?.stop();
  });

  it('primary killed mid-load: the store follows the promoted replica; failures bounded; exact afterwards', async () => {
    const store = new RedisStore({ sentinel: { sentinels: setup.sentinels, name: setup.name }, timeoutMs: TIMEOUT_MS, prefix: 'sf:' });
    const limiter = createLimiter({ limit: 1e9, windowMs: 60_000, store });
    const run = load(limiter, 8);
    try {
      await waitFor('load on the primary', () => run.okSince(0) >= 1000);
      expect(await exactly(20, store, 'before')).toBe(20);
      const killedAt = Date.now();
      await setup.primary.kill();
      await waitFor('the sentinels to promote the replica', () => setup.currentPrimaryPort() === 7111, 30_000);
      const promotedAt = Date.now();
      await waitFor('decisions on the new primary', () => run.okSince(promotedAt) >= 500, 30_000).catch((err: unknown) => {
        const last = run.outcomes.slice(-5).map((o) => (o.ok ? 'ok' : String(o.error)));
        throw new Error(`${String(err)}; status ${store.client.status}; last outcomes: ${last.join(' | ')}`);
      });
      await run.stop();
      const { failures } = expectBoundedFailures(run.outcomes, killedAt, TIMEOUT_MS);
      expect(failures).toBeGreaterThan(0); // the outage was real
      // Exact on the promoted replica, for a new key and for one counted before the failover
      // (replicated: its 20 units are still spent).
      expect(await exactly(25, store, 'after')).toBe(25);
      const l = createLimiter({ name: 'exact-before', limit: 20, windowMs: 3_600_000, store });
      expect((await l.consume('before')).allowed).toBe(false);
    } finally {
      await run.stop();
      await store.close();
    }
  }, 90_000);

  it('a sentinel target with no sentinel reachable fails fast with StoreError, never hangs', async () => {
    const store = new RedisStore({ sentinel: { sentinels: [{ host: '127.0.0.1', port: 7149 }], name: 'nobody' }, timeoutMs: 200 });
    const l = createLimiter({ limit: 5, windowMs: 1000, store });
    await expect(l.consume('x')).rejects.toBeInstanceOf(StoreError);
    await store.close();
  });
});

describe.skipIf(skip)('Redis Cluster failover', () => {
  let cluster: ClusterSetup;
  beforeAll(async () => {
    cluster = await startCluster([7130, 7131, 7132, 7133, 7134, 7135]);
  }, 90_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('analytics of two gateways on one Cluster are shared', async () => {
    const up = await echoUpstream();
    const config = validateConfig(
      {
        store: { type: 'redis', nodes: cluster.nodes, prefix: `an${Date.now()}:` },
        upstreams: { api: { url: up.url } },
        policies: { p: { requestsAllowed: 1000, timeWindowMinutes: 1 } },
        routes: [{ path: '/*', upstream: 'api', policies: ['p'] }],
        observability: { logs: { enabled: false }, analytics: { flushIntervalMs: 50 } },
      },
      {},
    );
    const a = await startGateway({ logger: quiet, port: 0, config });
    const b = await startGateway({ logger: quiet, port: 0, config });
    try {
      for (const gw of [a, a, a, b, b]) await (await fetch(`${gw.url}/x`)).arrayBuffer();
      await a.observer?.flush();
      await b.observer?.flush();
      // Each instance reads the fleet's total from the Cluster.
      expect((await a.observer?.analytics.summary('5m'))?.total).toBe(5);
      expect((await b.observer?.analytics.summary('5m'))?.total).toBe(5);
    } finally {
      await a.close();
      await b.close();
      await up.close();
    }
  });

  it('near-limit warnings of two gateways on one Cluster are deduplicated across them', async () => {
    const up = await echoUpstream();
    const config = validateConfig(
      {
        store: { type: 'redis', nodes: cluster.nodes, prefix: `wn${Date.now()}:` },
        upstreams: { api: { url: up.url } },
        policies: { p: { requestsAllowed: 10, timeWindowMinutes: 1, rateLimitBy: 'all' } },
        routes: [{ path: '/*', upstream: 'api', policies: ['p'] }],
        observability: { logs: { enabled: false }, warnings: { threshold: 0.5 } },
      },
      {},
    );
    const a = await startGateway({ logger: quiet, port: 0, config });
    const b = await startGateway({ logger: quiet, port: 0, config });
    try {
      // Past half the shared limit on both instances: each one sees usage >= 0.5.
      for (const gw of [a, a, a, a, a, a, b, b]) await (await fetch(`${gw.url}/x`)).arrayBuffer();
      await waitFor('the warning claims to settle', () => (a.observer?.warnings.stats.emitted ?? 0) + (b.observer?.warnings.stats.emitted ?? 0) >= 1);
      await new Promise((r) => setTimeout(r, 300));
      expect((a.observer?.warnings.stats.emitted ?? 0) + (b.observer?.warnings.stats.emitted ?? 0)).toBe(1);
    } finally {
      await a.close();
      await b.close();
      await up.close();
    }
  });

  it('a primary killed mid-load: its replica takes over; failures bounded; exact afterwards', async () => {
    const store = new RedisStore({ nodes: cluster.nodes, timeoutMs: TIMEOUT_MS, prefix: 'cf:' });
    const limiter = createLimiter({ limit: 1e9, windowMs: 60_000, store });
    const run = load(limiter, 8);
    try {
      await waitFor('load on the cluster', () => run.okSince(0) >= 1000, 30_000);
      // Kill the primary that serves the key 'victim' (checked exact after the failover).
      const victimPort = cluster.primaryOfSlot(slotOf('victim'));
      expect(victimPort).toBeGreaterThan(0);
      const victim = cluster.servers.find((s) => s.port === victimPort);
      const killedAt = Date.now();
      await victim?.kill();
      await waitFor('a replica to take over the slot', () => {
        const p = cluster.primaryOfSlot(slotOf('victim'));
        return p > 0 && p !== victimPort;
      });
      await waitFor('decisions on every slot again', () => run.okSince(Date.now() - 100) >= 500, 30_000);
      const settled = Date.now();
      await waitFor('a quiet second', () => Date.now() > settled + 1000);
      await run.stop();
      const { failures } = expectBoundedFailures(run.outcomes, killedAt, TIMEOUT_MS);
      expect(failures).toBeGreaterThan(0);
      expect(await exactly(25, store, 'victim')).toBe(25);
    } finally {
      await run.stop();
      await store.close();
    }
  }, 90_000);
});
