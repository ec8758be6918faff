/**
 * The harness of the multi-process gateway specs: several `sluice serve` processes (the real CLI)
 * sharing the Redis on REDIS_URL under a key prefix of their own, requests fired at all of them
 * at once, and the prefix's keys removed afterwards (never FLUSHDB: the server is shared).
 */
import { randomBytes } from 'node:crypto';
import { spawnGateway, type GatewayProcess } from './gateway-process.js';
import { deleteMatching, REDIS_URL } from './redis-server.js';

/** Gateways sharing one Redis. */
export interface GatewaysOnRedis {
  /** The key prefix of this suite (unique per run). */
  readonly prefix: string;
  /** The `store:` section for the config file. */
  readonly store: { type: 'redis'; url: string; prefix: string; timeoutMs: number };
  /** Spawn `n` gateways on one config file (in parallel); they are stopped by `close`. */
  spawn(file: string, n?: number): Promise<GatewayProcess[]>;
  /** Stop every gateway spawned and delete the prefix's keys. */
  close(): Promise<void>;
}

/** A fresh prefix `sluice-<name>-<random>:` on the shared Redis. */
export function gatewaysOnRedis(name: string): GatewaysOnRedis {
  const prefix = `sluice-${name}-${randomBytes(4).toString('hex')}:`;
  const spawned: GatewayProcess[] = [];
  return {
    prefix,
    // A generous store timeout: these specs are about exactness; on a loaded machine a 250 ms
    // timeout would fail open (by design, see the outage specs) and admit more than the limit.
    store: { type: 'redis', url: REDIS_URL, prefix, timeoutMs: 5000 },
    async spawn(file, n = 2) {
      const gws = await Promise.all(Array.from({ length: n }, () => spawnGateway(file)));
      spawned.push(...gws);
      return gws;
    },
    async close() {
      await Promise.all(spawned.map((g) => g.stop()));
      // State keys start with the prefix; the consumer registry's are `{<prefix>gw}:...`.
      await deleteMatching(REDIS_URL, `*${prefix}*`);
    },
  };
}

/** Fire `n` GETs of `path` at each gateway, all at once (interleaved); their statuses. */
export function fireAtAll(gateways: readonly GatewayProcess[], path: string, n: number, headers: Record<string, string> = {}): Promise<number[]> {
  const one = async (base: string) => {
    const r = await fetch(`${base}${path}`, { headers });
    await r.arrayBuffer();
    return r.status;
  };
  const all: Promise<number>[] = [];
  for (let i = 0; i < n; i++) for (const g of gateways) all.push(one(g.url));
  return Promise.all(all);
}
