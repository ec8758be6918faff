/**
 * Compound keys: `rateLimitBy` as a list of parts. Every part separates buckets; hostile values
 * (separators, empty parts, very long values) never make two different tuples share a bucket; a
 * missing part falls back to the policy's onUnidentified rule (its own IP bucket by default).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SluiceConfigError } from '../../src/core/errors.js';
import { compileTrustProxy } from '../../src/http/client-ip.js';
import { compileCompoundKey } from '../../src/http/compound-key.js';
import { createPolicyEngine } from '../../src/http/engine.js';
import type { HttpRequestInfo } from '../../src/http/request.js';

const req = (over: Partial<HttpRequestInfo> = {}): HttpRequestInfo => ({ method: 'GET', path: '/r', headers: {}, remoteAddress: '127.0.0.1', ...over });
const ctx = { trust: compileTrustProxy(false, 't'), forwardedHeader: 'x-forwarded-for' as const, ipv6Subnet: 64, apiKeyHeader: 'x-api-key', route: '/v1/*' };

describe('compound keys in the engine', () => {
  it('[ip, "header:x-tenant"]: one bucket per (ip, tenant)', async () => {
    const engine = createPolicyEngine({ logger: false, policies: [{ name: 'p', requestsAllowed: 1, timeWindowMinutes: 1, rateLimitBy: ['ip', 'header:x-tenant'] }] });
    const t = (tenant: string, ip = '10.0.0.1') => engine.check(req({ remoteAddress: ip, headers: { 'x-tenant': tenant } }));
    expect((await t('a')).action).toBe('allow');
    expect((await t('a')).action).toBe('deny');
    expect((await t('b')).action).toBe('allow');
    expect((await t('a', '10.0.0.2')).action).toBe('allow');
  });

  it('[user, route] per route (the engine route label), [ip, path], method, query, cookie and claim parts', async () => {
    const mk = (parts: string[], route?: string) => createPolicyEngine({ logger: false, ...(route ? { route } : {}), policies: [{ name: 'p', requestsAllowed: 1, timeWindowMinutes: 1, rateLimitBy: parts as never }] });
    const a = mk(['user', 'route'], '/a');
    const b = mk(['user', 'route'], '/b');
    const store = a.store;
    expect(store).not.toBe(b.store);
    const u = { user: { sub: 'alice', data: { org: 'acme' } } };
    expect((await a.check(req(u))).action).toBe('allow');
    expect((await a.check(req(u))).action).toBe('deny');
    const byPath = mk(['ip', 'path']);
    expect((await byPath.check(req({ path: '/x' }))).action).toBe('allow');
    expect((await byPath.check(req({ path: '/y' }))).action).toBe('allow');
    expect((await byPath.check(req({ path: '/x' }))).action).toBe('deny');
    const byQuery = mk(['query:tenant', 'method']);
    expect((await byQuery.check(req({ url: '/r?tenant=t1' }))).action).toBe('allow');
    expect((await byQuery.check(req({ url: '/r?tenant=t1', method: 'POST' }))).action).toBe('allow');
    expect((await byQuery.check(req({ url: '/r?tenant=t1' }))).action).toBe('deny');
    const byCookie = mk(['cookie:session']);
    expect((await byCookie.check(req({ headers: { cookie: 'a=1; session=s1' } }))).action).toBe('allow');
    expect((await byCookie.check(req({ headers: { cookie: 'session=s2' } }))).action).toBe('allow');
    expect((await byCookie.check(req({ headers: { cookie: 'session=s1; b=2' } }))).action).toBe('deny');
    const byClaim = mk(['claim:org']);
    expect((await byClaim.check(req(u))).action).toBe('allow');
    expect((await byClaim.check(req({ user: { sub: 'bob', data: { org: 'acme' } } }))).action).toBe('deny');
  });

  it('a missing part: the IP fallback bucket by default (never shared with the compound buckets), 400 with onUnidentified: deny, unlimited only with allow', async () => {
    const fallback = createPolicyEngine({ logger: false, policies: [{ name: 'p', requestsAllowed: 1, timeWindowMinutes: 1, rateLimitBy: ['ip', 'header:x-tenant'] }] });
    const r1 = await fallback.check(req());
    expect(r1.action).toBe('allow');
    expect(r1.decision?.key).toBe('ip:127.0.0.1');
    expect((await fallback.check(req())).action).toBe('deny');
    expect((await fallback.check(req({ headers: { 'x-tenant': 'a' } }))).action).toBe('allow');
    const deny = createPolicyEngine({ logger: false, policies: [{ name: 'p', requestsAllowed: 1, timeWindowMinutes: 1, rateLimitBy: ['header:x-tenant'], onUnidentified: 'deny' }] });
    expect((await deny.check(req())).status).toBe(400);
  });

  it('bad parts are configuration errors naming the list entry', () => {
    const bad: [unknown, string][] = [
      [[], 'p.rateLimitBy'],
      [['ip', 'tenant'], 'p.rateLimitBy[1]'],
      [['header:bad header'], 'p.rateLimitBy[0]'],
      [['ip', 'ip'], 'p.rateLimitBy[1]'],
      [['route'], 'p.rateLimitBy[0]'],
      [[3], 'p.rateLimitBy[0]'],
    ];
    for (const [parts, field] of bad) {
      let err: unknown;
      try {
        createPolicyEngine({ policies: [{ name: 'p', requestsAllowed: 1, timeWindowMinutes: 1, rateLimitBy: parts as never }] });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(parts)).toBeInstanceOf(SluiceConfigError);
      expect((err as SluiceConfigError).field).toBe(field);
    }
  });
});

describe('compound keys never collide', () => {
  it('different (query, query, header) tuples give different keys, for any values: separators, empty, very long, unpaired surrogates', () => {
    const key = compileCompoundKey(['query:a', 'query:b', 'header:x-t'], 'p', ctx);
    // Mostly short strings over separator-like characters, where a naive join would collide.
    const value = fc.oneof(
      { weight: 6, arbitrary: fc.string({ unit: fc.constantFrom(':', 'x', '1'), maxLength: 4 }) },
      { weight: 1, arbitrary: fc.string({ minLength: 190, maxLength: 400 }) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
    );
    // The header from a small pool, so that tuples often agree on it and differ only in the query parts.
    const tuple = fc.tuple(value, value, fc.constantFrom('h1', 'h2'));
    // The tuple as the request carries it (a query string cannot carry a lone surrogate: it arrives as U+FFFD).
    const carried = ([a, b, h]: [string, string, string]) => {
      const qs = new URLSearchParams({ a, b }).toString();
      const back = new URLSearchParams(qs);
      return { r: req({ url: `/r?${qs}`, headers: { 'x-t': h } }), t: [back.get('a'), back.get('b'), h] };
    };
    fc.assert(
      // Many tuples at once: every pair among them is compared.
      fc.property(fc.array(tuple, { minLength: 20, maxLength: 80 }), (tuples) => {
        const byKey = new Map<string, string>();
        for (const x of tuples) {
          const c = carried(x);
          const k = key(c.r);
          // Empty values are missing parts (undefined): no key at all.
          if (k === undefined) continue;
          const t = JSON.stringify(c.t);
          const before = byKey.get(k);
          if (before !== undefined) expect(before).toBe(t);
          byKey.set(k, t);
        }
        const distinct = new Set(tuples.map((x) => carried(x)).filter((c) => key(c.r) !== undefined).map((c) => JSON.stringify(c.t)));
        expect(byKey.size).toBe(distinct.size);
      }),
      { numRuns: 400 },
    );
  });

  it('an empty part is missing (never the bucket of the empty string); the key of a very long value is bounded', () => {
    const key = compileCompoundKey(['query:a', 'query:b'], 'p', ctx);
    expect(key(req({ url: '/r?a=&b=x' }))).toBeUndefined();
    const long = key(req({ url: `/r?a=${'x'.repeat(100_000)}&b=y` })) as string;
    expect(long.length).toBeLessThan(100);
    expect(key(req({ url: '/r?a=1:x&b=y' }))).not.toBe(key(req({ url: '/r?a=1&b=x:y' })));
  });
});
