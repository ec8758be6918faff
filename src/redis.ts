/**
 * `sluice/redis`: the Redis / Redis Cluster store, for limits shared by many processes.
 *
 * @example
 * ```ts
 * import { createLimiter } from 'sluice';
 * import { RedisStore } from 'sluice/redis';
 * const store = new RedisStore({ url: 'redis://127.0.0.1:6379' });
 * const limiter = createLimiter({ limit: 100, windowMs: 60_000, store });
 * const d = await limiter.consume('user:42'); // rejects with StoreError when Redis fails
 * ```
 */
export { RedisStore, type RedisStoreOptions } from './stores/redis-store.js';
export type { RedisHostPort, RedisSentinelTarget } from './stores/redis/connection.js';
