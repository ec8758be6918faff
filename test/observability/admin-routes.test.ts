import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createObservabilityRoutes } from '../../src/observability/admin-routes.js';
import { createObserver, type Observer } from '../../src/observability/observer.js';
import { miniGateway, TOKEN } from './support.js';

let observer: Observer;
let gw: Awaited<ReturnType<typeof miniGateway>>;
const auth = { authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  observer = createObserver({ logs: false });
  gw = await miniGateway(observer, 3);
});
afterAll(async () => {
  await gw.close();
  await observer.close();
});

describe('observability admin routes', () => {
  it.each(['/metrics', '/dashboard', '/analytics/summary', '/analytics/live', '/analytics/consumers/alice'])('%s refuses a missing or wrong token with 401', async (path) => {
    const variants: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-token-wrong-token' }, { authorization: `Bearer ${TOKEN}x` }, { cookie: 'sluice_admin=forged' }];
    for (const headers of variants) {
      const res = await fetch(gw.url + path, { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(await res.text()).not.toMatch(/sluice_decisions_total|<html/);
    }
  });

  it('reads Authorization like the gateway admin API does: the Bearer scheme in any case (RFC 9110 §11.1)', async () => {
    // Regression: this handler took only "Bearer " while /consumers took any case, so one admin
    // server answered /consumers and 401'd /metrics for the same header.
    for (const authorization of [`bearer ${TOKEN}`, `BEARER ${TOKEN}`, `Bearer \t${TOKEN} `]) {
      const res = await fetch(`${gw.url}/metrics`, { headers: { authorization } });
      expect(res.status).toBe(200);
      await res.text();
    }
    for (const authorization of [`Basic ${TOKEN}`, `Bearer${TOKEN}`, `Bearer ${TOKEN} extra`]) {
      expect((await fetch(`${gw.url}/metrics`, { headers: { authorization } })).status).toBe(401);
    }
  });

  it('counts in /metrics and /analytics equal what was sent', async () => {
    for (let i = 0; i < 5; i++) await fetch(`${gw.url}/api/x`, { headers: { 'x-consumer': 'alice' } }).then((r) => r.text());
    for (let i = 0; i < 2; i++) await fetch(`${gw.url}/api/x`, { headers: { 'x-consumer': 'bob' } }).then((r) => r.text());
    await observer.flush();
    const metrics = await (await fetch(`${gw.url}/metrics`, { headers: auth })).text();
    expect(metrics).toContain('sluice_decisions_total{route="api",policy="per-minute",outcome="allowed"} 5');
    expect(metrics).toContain('sluice_decisions_total{route="api",policy="per-minute",outcome="limited"} 2');
    expect(metrics).toContain('sluice_responses_total{route="api",status="429"} 2');
    expect(metrics).toMatch(/sluice_store_latency_seconds_count 7/);
    const summary = await (await fetch(`${gw.url}/analytics/summary?window=5m`, { headers: auth })).json();
    expect(summary).toMatchObject({ window: '5m', total: 7, limited: 2, topConsumers: [{ id: 'alice', count: 2 }], topIps: [{ id: '127.0.0.1', count: 2 }] });
    expect(summary.nearLimit).toEqual([{ consumer: 'alice', policy: 'per-minute', usage: 1 }]);
    const alice = await (await fetch(`${gw.url}/analytics/consumers/alice?window=1h`, { headers: auth })).json();
    expect(alice).toMatchObject({ consumer: 'alice', total: 5, limited: 2 });
    const live = await (await fetch(`${gw.url}/analytics/live?seconds=30`, { headers: auth })).json();
    expect(live.seconds.reduce((a: number, s: { total: number }) => a + s.total, 0)).toBe(7);
  });

  it('answers bad query parameters with 400 naming the parameter, other methods with 405', async () => {
    const bad = await fetch(`${gw.url}/analytics/summary?window=7d`, { headers: auth });
    expect(bad.status).toBe(400);
    expect((await bad.json()).detail).toMatch(/window/);
    expect((await fetch(`${gw.url}/analytics/live?seconds=0`, { headers: auth })).status).toBe(400);
    const post = await fetch(`${gw.url}/metrics`, { method: 'POST', headers: auth });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('swaps /dashboard?token= for an HttpOnly session cookie that is not the token', async () => {
    const wrong = await fetch(`${gw.url}/dashboard?token=nope`, { redirect: 'manual' });
    expect(wrong.status).toBe(401);
    const res = await fetch(`${gw.url}/dashboard?token=${TOKEN}`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/dashboard');
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain(TOKEN);
    const page = await fetch(`${gw.url}/dashboard`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'sha256-/);
    expect(await page.text()).toContain('<canvas id="rps-chart">');
  });

  it('leaves paths that are not its own to the host server, and validates its options', async () => {
    const handler = createObservabilityRoutes({ observer, token: TOKEN, prefix: '/admin' });
    const req = { url: '/consumers', method: 'GET', headers: {} } as never;
    expect(await handler(req, {} as never)).toBe(false);
    expect(() => createObservabilityRoutes({ observer, token: 'short' })).toThrow(/adminToken/);
  });
});
