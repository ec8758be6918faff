/**
 * Spec: the memory store's bound in bytes (issue 10 item 18). Keys can be chosen by a client (a
 * header-keyed policy), so a table's memory, not only its key count, must be bounded: `maxBytes`
 * caps each rule's table at `maxBytes / MEMORY_BYTES_PER_KEY` keys, the default is sized from the
 * memory the process may use, and the per-key figure the docs give holds for ~200-character keys.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/gateway/config.js';
import { createLimiter } from '../../src/index.js';
import { defaultMaxKeys, MEMORY_BYTES_PER_KEY, MemoryStore } from '../../src/stores/memory-store.js';
import { microClock } from '../core/harness.js';

function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('MemoryStore maxBytes', () => {
  it('holds at most maxBytes / MEMORY_BYTES_PER_KEY keys per rule; live keys beyond are evicted and counted', () => {
    const store = new MemoryStore({ maxBytes: 1000 * MEMORY_BYTES_PER_KEY, clock: microClock() });
    const limiter = createLimiter({ store, limit: 5, windowMs: 60_000 });
    for (let i = 0; i < 5000; i++) limiter.consumeSync(`hdr:${'x'.repeat(190)}${i}`);
    expect(store.size).toBe(1000);
    expect(store.evictedLive).toBe(4000);
  });

  it('the per-key figure covers a 200-character key (heap and typed arrays, measured)', () => {
    // 140 000 keys: the table's arrays have just doubled (to 262 144 slots), the most slack per key.
    const n = 140_000;
    const store = new MemoryStore({ maxKeys: n, clock: microClock() });
    const limiter = createLimiter({ store, limit: 5, windowMs: 60_000 });
    limiter.consumeSync('warm-up');
    gc();
    gc();
    const used = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const before = used();
    for (let i = 0; i < n; i++) limiter.consumeSync(`hdr:${i.toString().padStart(196, 'k')}`);
    gc();
    gc();
    const perKey = (used() - before) / n;
    expect(store.size).toBe(n);
    expect(perKey).toBeGreaterThan(100); // the measurement measured something
    expect(perKey).toBeLessThanOrEqual(MEMORY_BYTES_PER_KEY);
  });

  it('defaults to 1 000 000 keys per rule, or what fits in 1/16 of the available memory', () => {
    expect(defaultMaxKeys(64 * 2 ** 30)).toBe(1_000_000);
    expect(defaultMaxKeys(2 * 2 ** 30)).toBe(Math.floor((2 * 2 ** 30) / 16 / MEMORY_BYTES_PER_KEY));
    expect(defaultMaxKeys(1 << 20)).toBe(1024);
  });

  it('refuses maxBytes below one key, and maxKeys together with maxBytes', () => {
    expect(() => new MemoryStore({ maxBytes: 100 })).toThrow(/maxBytes/);
    expect(() => new MemoryStore({ maxBytes: 1e6, maxKeys: 10 })).toThrow(/not both/);
  });

  it('is a gateway store option (store: { type: memory, maxBytes })', () => {
    const base = { upstreams: { api: { url: 'http://127.0.0.1:3000' } }, routes: [{ path: '/*', upstream: 'api' }] };
    expect(validateConfig({ ...base, store: { type: 'memory', maxBytes: 64 * 2 ** 20 } }, {}).store).toEqual({ type: 'memory', maxBytes: 64 * 2 ** 20 });
    expect(() => validateConfig({ ...base, store: { type: 'memory', maxBytes: 1e6, maxKeys: 10 } }, {})).toThrow(/not both/);
  });
});
