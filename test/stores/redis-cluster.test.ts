/**
 * RedisStore on a real Redis Cluster: six redis-server processes (3 masters + 3 replicas) on
 * ports 7010-7015 that this suite starts, joins with `redis-cli --cluster create`, and stops.
 * Many keys (with braces, empty, binary) spread over the slots; multi-rule decisions must never
 * hit CROSSSLOT; decisions match MemoryStore's under a shared manual clock.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/core/clock.js';
import { compileRules } from '../../src/core/rule.js';
import { createLimiter, MemoryStore } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { slotOf, tagOf } from '../../src/stores/redis/keys.js';
import { skipWithoutRedis, startRedis, type RedisServer } from '../support/redis-server.js';

const skip = skipWithoutRedis('redis-cluster');
const PORTS = [7010, 7011, 7012, 7013, 7014, 7015];
const servers: RedisServer[] = [];
let client: Cluster;

async function clusterOk(): Promise<boolean> {
  for (const port of PORTS) {
    const r = spawnSync('redis-cli', ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8' });
    if (!/cluster_state:ok/.test(r.stdout)) return false;
  }
  return true;
}

beforeAll(async () => {
  if (skip) return;
  // A cluster left over by a crashed earlier run would hold these ports: clear them.
  for (const port of PORTS) spawnSync('redis-cli', ['-p', String(port), 'shutdown', 'nosave'], { timeout: 2000 });
  for (const port of PORTS) {
    servers.push(await startRedis(port, ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000']));
  }
  const create = spawnSync(
    'redis-cli',
    ['--cluster', 'create', ...PORTS.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}\n${create.stderr}`);
  const deadline = Date.now() + 30_000;
  while (!(await clusterOk())) {
    if (Date.now() > deadline) throw new Error('cluster did not reach cluster_state:ok in 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  client = new Cluster([{ host: '127.0.0.1', port: PORTS[0] as number }], { enableOfflineQueue: true });
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
  });
}, 60_000);

afterAll(async () => {
  client?.disconnect();
  for (const s of servers) await s.stop();
});

describe.skipIf(skip)('RedisStore on Redis Cluster (6 nodes started by the test)', () => {
  it('our CRC16 slot equals CLUSTER KEYSLOT for every state key, braces included', async () => {
    const keys = ['user:1', '', '{', '}', '{a}b', 'a{b}c', '%', '😀', '\u0000x', 'x'.repeat(500)];
    const rules = compileRules([{ name: 'n{1}', limit: 1, windowMs: 1000 }, { name: '}', limit: 1, windowMs: 1000, algorithm: 'sliding-log' }]);
    for (const key of keys) {
      for (const r of rules) {
        const stateKey = `sluice:{${tagOf(key)}}:${r.id}`;
        expect(await client.cluster('KEYSLOT', stateKey)).toBe(slotOf(key));
      }
    }
  });

  it('many keys with multi-rule limits through an ioredis Cluster: exact, no CROSSSLOT', async () => {
    const store = new RedisStore({ client, prefix: `c${randomUUID().slice(0, 6)}:`, timeoutMs: 5000 });
    const l = createLimiter({
      limits: [
        { name: 'burst', limit: 3, windowMs: 60_000 },
        { name: 'minute', limit: 5, windowMs: 60_000, algorithm: 'sliding-window' },
        { name: 'log', limit: 4, windowMs: 60_000, algorithm: 'sliding-log' },
      ],
      store,
    });
    const keys = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? `{tenant${i}}:user` : i % 3 === 1 ? `u${i}}{` : `key-${i}-${'é'.repeat(i % 7)}`));
    expect(new Set(keys.map(slotOf)).size).toBeGreaterThan(200);
    // 4 rounds, each issuing all keys at once (batched per slot): 3 admitted, then refused by "burst".
    for (let round = 0; round < 4; round++) {
      const ds = await Promise.all(keys.map((k) => l.consume(k)));
      for (const d of ds) {
        expect(d.allowed).toBe(round < 3);
        if (round === 3) expect(d.policy).toBe('burst');
      }
    }
    await store.close();
    expect(client.status).toBe('ready'); // the store does not close a client it was given
  });

  it('decisions and charges on the cluster equal MemoryStore\'s under a shared manual clock', async () => {
    const clock = manualClock();
    const store = new RedisStore({ client, prefix: `m${randomUUID().slice(0, 6)}:`, clock, timeoutMs: 5000 });
    const memory = new MemoryStore({ clock });
    const rules = compileRules([
      { name: 'g', limit: 5, windowMs: 1000, burst: 3 },
      { name: 'f', limit: 7, windowMs: 2000, algorithm: 'fixed-window' },
      { name: 'w', limit: 6, windowMs: 1500, algorithm: 'sliding-window' },
    ]);
    const keys = ['a', '{b}', 'c}{', ''];
    for (let i = 0; i < 120; i++) {
      const key = keys[i % keys.length] as string;
      const cost = i % 5;
      // Every 7th step charges (cost from the response), often past the limits.
      const [a, b] =
        i % 7 === 3
          ? await Promise.all([store.charge(key, rules, 3 * cost), memory.charge(key, rules, 3 * cost)])
          : await Promise.all([store.decide(key, rules, cost), memory.decide(key, rules, cost)]);
      expect(a).toEqual(b);
      clock.advance((i * 37) % 400);
    }
    await store.close();
  });

  it('a store created from seed nodes works and closes its own client', async () => {
    const store = new RedisStore({ nodes: [{ host: '127.0.0.1', port: PORTS[1] as number }], prefix: `n${randomUUID().slice(0, 6)}:`, timeoutMs: 5000 });
    const l = createLimiter({ limit: 2, windowMs: 60_000, store });
    const ds = await Promise.all(['x', 'x', 'x', 'y{'].map((k) => l.consume(k)));
    expect(ds.map((d) => d.allowed)).toEqual([true, true, false, true]);
    await store.close();
    expect(['end', 'close', 'disconnecting']).toContain(store.client.status);
  });
});
