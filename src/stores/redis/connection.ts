/**
 * The one place Sluice creates Redis connections: a standalone server (URL), a Redis Cluster (seed
 * nodes) or a Sentinel-managed primary (sentinels + master name), each in one of two profiles:
 *
 * - `fail-fast` (rate-limit decisions): no offline queue, no command retry, no replay after a
 *   reconnect. A decision never waits for a reconnect, nor runs after its caller got an error.
 * - `patient` (consumer registry, analytics, warnings): commands issued while disconnected wait in
 *   the offline queue and are retried once, because losing an analytics flush or a registry reload
 *   to a blip is worse than waiting for it.
 *
 * Both reconnect in the background forever (capped backoff) and follow failovers: a Sentinel
 * client asks the sentinels for the current primary on every reconnect (and reconnects when a
 * demoted primary answers READONLY); a Cluster client refreshes its slot map on MOVED and on
 * reconnect.
 */
import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';
import { SluiceConfigError } from '../../core/errors.js';
import { describe } from '../../core/rule.js';

/** A host and port of a Cluster seed node or a sentinel. */
export interface RedisHostPort {
  host: string;
  port: number;
}

/** A primary managed by Redis Sentinel. */
export interface RedisSentinelTarget {
  /** Sentinel addresses (at least one; give all of them so one being down does not matter). */
  sentinels: RedisHostPort[];
  /** Master name, as in the sentinels' `sentinel monitor <name> ...`. */
  name: string;
  /** Password of the Redis servers (not of the sentinels). */
  password?: string;
  /** Password of the sentinels, when they require one. */
  sentinelPassword?: string;
}

/** Where Redis is: exactly one of `url`, `nodes` (Cluster) or `sentinel`. */
export interface RedisTarget {
  /** `redis://` or `rediss://` URL of a standalone server. */
  url?: string;
  /** Seed nodes of a Redis Cluster. */
  nodes?: ClusterNode[];
  /** A Sentinel-managed primary. */
  sentinel?: RedisSentinelTarget;
}

/** How a connection behaves while Redis is unreachable (see the module comment). */
export type ConnectionProfile = 'fail-fast' | 'patient';

/** Options of {@link createRedisConnection}. */
export interface RedisConnectionOptions {
  profile: ConnectionProfile;
  /** Budget of one command in ms; the connect timeout is derived from it. Default 250. */
  timeoutMs?: number;
  /** Do not connect until the first command or `connect()`. Default false. */
  lazyConnect?: boolean;
}

/** The default URL when no target is given: `REDIS_URL`, else the local server. */
export const defaultRedisUrl = (): string => process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const hostPort = (v: unknown, field: string): void => {
  const o = v as Partial<RedisHostPort> | null;
  if (o === null || typeof o !== 'object' || typeof o.host !== 'string' || o.host.length === 0 || !Number.isInteger(o.port) || (o.port as number) < 1 || (o.port as number) > 65_535) {
    throw new SluiceConfigError(field, `must be { host, port } with a port from 1 to 65535, got ${describe(v)}`);
  }
};

/**
 * Check a target: exactly one of `url`, `nodes`, `sentinel`, each well formed. With none, the
 * default URL is used. Throws {@link SluiceConfigError} naming the field.
 */
export function checkRedisTarget(target: RedisTarget): void {
  const given = (['url', 'nodes', 'sentinel'] as const).filter((f) => target[f] !== undefined);
  if (given.length > 1) throw new SluiceConfigError(given[1] as string, `give only one of url, nodes, sentinel (got ${given.join(', ')})`);
  if (target.url !== undefined && (typeof target.url !== 'string' || !/^rediss?:\/\//.test(target.url))) {
    throw new SluiceConfigError('url', `must be a redis:// or rediss:// URL, got ${describe(target.url)}`);
  }
  if (target.nodes !== undefined) {
    if (!Array.isArray(target.nodes) || target.nodes.length === 0) throw new SluiceConfigError('nodes', 'must be a non-empty array of cluster seed nodes');
  }
  const s = target.sentinel;
  if (s !== undefined) {
    if (s === null || typeof s !== 'object') throw new SluiceConfigError('sentinel', `must be { sentinels, name }, got ${describe(s)}`);
    if (!Array.isArray(s.sentinels) || s.sentinels.length === 0) throw new SluiceConfigError('sentinel.sentinels', 'must be a non-empty array of { host, port }');
    s.sentinels.forEach((n, i) => hostPort(n, `sentinel.sentinels[${i}]`));
    if (typeof s.name !== 'string' || s.name.length === 0) throw new SluiceConfigError('sentinel.name', `must be the master name, got ${describe(s.name)}`);
  }
}

/** Per-connection options of a profile (for a Cluster: of each node's connection). */
function connectionOptions(profile: ConnectionProfile, timeoutMs: number, lazyConnect: boolean): RedisOptions {
  const common: RedisOptions = {
    connectTimeout: profile === 'patient' ? 5000 : Math.max(1000, 4 * timeoutMs),
    retryStrategy: (times) => Math.min(50 * times, 500),
    lazyConnect,
  };
  if (profile === 'patient') return { ...common, enableOfflineQueue: true, maxRetriesPerRequest: 1 };
  // Fail fast: a decision must never wait for a reconnect, nor be replayed after one (the caller
  // already got an error for it).
  return { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false };
}

/**
 * Create an ioredis client (standalone or Sentinel) or Cluster for `target` with the options of
 * `profile`. The caller owns it (`quit()` it when done) and should listen to `error` (ioredis
 * logs unhandled connection errors otherwise). Throws {@link SluiceConfigError} on a bad target.
 */
export function createRedisConnection(target: RedisTarget, options: RedisConnectionOptions): Redis | Cluster {
  checkRedisTarget(target);
  const timeoutMs = options.timeoutMs ?? 250;
  const base = connectionOptions(options.profile, timeoutMs, options.lazyConnect ?? false);
  if (target.nodes !== undefined) {
    const { retryStrategy: _nodesDoNotRetry, enableOfflineQueue: _perCluster, ...nodeOptions } = base;
    const cluster: ClusterOptions = {
      enableOfflineQueue: base.enableOfflineQueue ?? true,
      lazyConnect: base.lazyConnect ?? false,
      clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
      // ioredis's ready check sends CLUSTER INFO through a node connection the slot refresh may have
      // just closed ("Connection is closed"), then reconnects from scratch: a fresh store's first
      // decisions waited past timeoutMs in 2-4 of 10 runs of the seed-node spec. A cluster that is
      // not ok answers CLUSTERDOWN, which fails the decision as a StoreError anyway.
      enableReadyCheck: false,
      // Node connections do not reconnect on their own (ioredis refreshes the slot map instead).
      redisOptions: { ...nodeOptions, lazyConnect: false },
    };
    return new Cluster(target.nodes, cluster);
  }
  if (target.sentinel !== undefined) {
    const s = target.sentinel;
    return new Redis({
      ...base,
      sentinels: s.sentinels.map((n) => ({ host: n.host, port: n.port })),
      name: s.name,
      role: 'master',
      ...(s.password !== undefined ? { password: s.password } : {}),
      ...(s.sentinelPassword !== undefined ? { sentinelPassword: s.sentinelPassword } : {}),
      // A primary demoted by a failover (still up, now a replica) answers READONLY: reconnect,
      // which asks the sentinels for the new primary. (Not ioredis's `failoverDetector`: its
      // disconnect can land while the client is resolving the primary after a crash, and ioredis
      // then ends the client for good: seen in the Sentinel failover spec.)
      reconnectOnError: (err) => /^READONLY\b/.test(err.message),
      sentinelRetryStrategy: (times) => Math.min(100 * times, 1000),
      sentinelMaxConnections: 10,
    });
  }
  return new Redis(target.url ?? defaultRedisUrl(), base);
}

/** True when `client` is a Cluster (scripts must then stay within one hash slot per call). */
export const isCluster = (client: Redis | Cluster): client is Cluster => client instanceof Cluster;
