/**
 * The one Redis connection factory: which client each target gives, what each profile means
 * while Redis is unreachable, and clear errors for a bad target.
 */
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { SluiceConfigError } from '../../../src/core/errors.js';
import { checkRedisTarget, createRedisConnection, type RedisTarget } from '../../../src/stores/redis/connection.js';

const lazy = { lazyConnect: true } as const;

describe('createRedisConnection', () => {
  it('a URL gives a standalone client; nodes a Cluster; a sentinel target a client that asks the sentinels', () => {
    const std = createRedisConnection({ url: 'redis://127.0.0.1:7199' }, { profile: 'fail-fast', ...lazy });
    const cl = createRedisConnection({ nodes: [{ host: '127.0.0.1', port: 7199 }] }, { profile: 'fail-fast', ...lazy });
    const se = createRedisConnection({ sentinel: { sentinels: [{ host: '127.0.0.1', port: 7198 }], name: 'm' } }, { profile: 'patient', ...lazy });
    expect(std).toBeInstanceOf(Redis);
    expect((std as Redis).options.port).toBe(7199);
    expect(cl).toBeInstanceOf(Cluster);
    expect(se).toBeInstanceOf(Redis);
    expect((se as Redis).options.sentinels).toEqual([{ host: '127.0.0.1', port: 7198 }]);
    expect((se as Redis).options.name).toBe('m');
    for (const c of [std, cl, se]) c.disconnect();
  });

  it('fail-fast: no offline queue, no retry, no replay; patient: queued and retried once', () => {
    const ff = createRedisConnection({ url: 'redis://127.0.0.1:7199' }, { profile: 'fail-fast', ...lazy }) as Redis;
    const pa = createRedisConnection({ url: 'redis://127.0.0.1:7199' }, { profile: 'patient', ...lazy }) as Redis;
    expect(ff.options).toMatchObject({ enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false });
    expect(pa.options).toMatchObject({ enableOfflineQueue: true, maxRetriesPerRequest: 1 });
    // Both keep reconnecting in the background, with a capped delay.
    expect(ff.options.retryStrategy?.(1000)).toBe(500);
    expect(pa.options.retryStrategy?.(1000)).toBe(500);
    const cl = createRedisConnection({ nodes: [{ host: '127.0.0.1', port: 7199 }] }, { profile: 'fail-fast', ...lazy }) as Cluster;
    expect(cl.options.enableOfflineQueue).toBe(false);
    expect(cl.options.redisOptions).toMatchObject({ maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false });
    for (const c of [ff, pa, cl]) c.disconnect();
  });

  it('a fail-fast client rejects a command at once while Redis is unreachable', async () => {
    const c = createRedisConnection({ url: 'redis://127.0.0.1:7199' }, { profile: 'fail-fast', timeoutMs: 100 }) as Redis;
    c.on('error', () => {});
    await new Promise((r) => setTimeout(r, 50));
    await expect(c.get('x')).rejects.toThrow();
    c.disconnect();
  });
});

describe('checkRedisTarget', () => {
  it.each<[RedisTarget, string]>([
    [{ url: 'http://x' }, 'url'],
    [{ url: 'redis://x', nodes: [{ host: 'a', port: 1 }] }, 'nodes'],
    [{ url: 'redis://x', sentinel: { sentinels: [{ host: 'a', port: 1 }], name: 'm' } }, 'sentinel'],
    [{ nodes: [] }, 'nodes'],
    [{ sentinel: { sentinels: [], name: 'm' } }, 'sentinel.sentinels'],
    [{ sentinel: { sentinels: [{ host: 'a', port: 0 }], name: 'm' } }, 'sentinel.sentinels[0]'],
    [{ sentinel: { sentinels: [{ host: 'a', port: 1 }], name: '' } }, 'sentinel.name'],
  ])('%j is refused naming %s', (target, field) => {
    let thrown: unknown;
    try {
      checkRedisTarget(target);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SluiceConfigError);
    expect((thrown as SluiceConfigError).field).toBe(field);
  });
});
