/** 10 000 new keys through real HTTP: every request answered, store memory bounded by maxKeys. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { expect, it } from 'vitest';
import { rateLimit } from '../../src/http.js';
import { MemoryStore } from '../../src/stores/memory-store.js';

it('10 000 distinct keys in a burst: no crash, no error, bounded store', async () => {
  const store = new MemoryStore({ maxKeys: 2000 });
  const limit = rateLimit({ store, logger: false, rateLimitBy: 'header', headerName: 'x-customer', requestsAllowed: 5, timeWindowMinutes: 1 });
  const server = createServer(async (req, res) => {
    if (await limit(req, res)) res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 32 });
  const heapBefore = process.memoryUsage().heapUsed;
  let ok = 0;
  const N = 10_000;
  for (let batch = 0; batch < N; batch += 500) {
    const codes = await Promise.all(
      Array.from({ length: 500 }, async (_, i) => {
        const res = await pool.request({ path: '/', method: 'GET', headers: { 'x-customer': `c-${batch + i}-${'z'.repeat((batch + i) % 300)}` } });
        await res.body.text();
        return res.statusCode;
      }),
    );
    ok += codes.filter((c) => c === 200).length;
  }
  expect(ok).toBe(N);
  expect(store.size).toBeLessThanOrEqual(2000);
  expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(200 * 1024 * 1024);
  await pool.close();
  await new Promise<void>((r) => server.close(() => r()));
});
