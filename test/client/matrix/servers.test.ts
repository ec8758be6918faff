/**
 * The matrix's servers themselves, checked with plain fetch before any client is judged against
 * them: each one refuses a burst over its limit with 429, speaks the dialect its row claims (quota
 * headers on quota rows, none on blind rows), and counts on its side exactly what the caller saw.
 * A server that limited nothing, or miscounted, would make every client look good.
 */
import { describe, expect, it } from 'vitest';
import { allRows } from './rows.js';
import { pathsOf } from './run-row.js';

const QUOTA_HEADER = /^(x-)?rate-?limit|^x-shopify-shop-api-call-limit$/i;

describe('client matrix servers (plain fetch, a burst of 3x the limit at once)', () => {
  for (const row of allRows) {
    it(`${row.name}: refuses the excess with 429, ${row.kind === 'quota' ? 'sends quota headers' : 'sends no quota headers'}, counts what it sent`, async () => {
      const server = await row.start();
      try {
        const paths = pathsOf(row, 3 * row.documented.limit * row.groups.length + 10);
        const responses = await Promise.all(
          paths.map(async (p) => {
            const res = await fetch(server.url + p);
            await res.arrayBuffer();
            return res;
          }),
        );
        const statuses = responses.map((r) => r.status);
        const ok = statuses.filter((s) => s === 200).length;
        const refused = statuses.filter((s) => s === 429).length;
        expect(ok + refused).toBe(paths.length);
        expect(refused).toBeGreaterThan(0);
        expect(ok).toBeLessThan(paths.length);
        const quotaHeaders = new Set<string>();
        for (const r of responses) r.headers.forEach((_v, k) => QUOTA_HEADER.test(k) && quotaHeaders.add(k));
        if (row.kind === 'quota') expect(quotaHeaders.size).toBeGreaterThan(0);
        else expect([...quotaHeaders]).toEqual([]);
        if (row.retryAfter !== undefined) {
          for (const r of responses.filter((x) => x.status === 429)) {
            const ra = r.headers.get('retry-after');
            if (row.retryAfter === null) expect(ra).toBeNull();
            else expect(ra).toMatch(row.retryAfter);
          }
        }
        expect(await server.counts()).toMatchObject({ ok, r429: refused, other: 0 });
      } finally {
        await server.close();
      }
    });
  }
});
