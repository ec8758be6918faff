/**
 * The forward-auth decision endpoint, spoken to as nginx `auth_request`, Caddy `forward_auth` and
 * Traefik `ForwardAuth` speak it: the original method, URI, host and client address arrive in
 * headers; the answer is 200 + rate-limit headers, or Sluice's own refusal.
 * (The real proxies are driven in proxies.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { parseList } from 'structured-headers';
import { generateKeyPair, SignJWT } from 'jose';
import { SluiceConfigError } from '../../src/core/errors.js';
import { validateConfig } from '../../src/gateway/config.js';
import { startGateway, type Gateway } from '../../src/gateway/server.js';

const silent = { info: () => {}, warn: () => {}, error: () => {} };
const KEY = 'fa-key-0123456789abcdef';

function config(extra: Record<string, unknown> = {}) {
  return validateConfig({
    server: { trustProxy: ['127.0.0.1/32'] },
    forwardAuth: { port: 0 },
    policies: {
      'per-ip': { rateLimitBy: 'ip', requestsAllowed: 3, timeWindowMinutes: 1, headerMode: 'ietf', algorithm: 'fixed-window' },
      'per-consumer': { rateLimitBy: 'user', requestsAllowed: 2, timeWindowMinutes: 1, headerMode: 'ietf', onUnidentified: 'deny' },
    },
    auth: { apiKey: { header: 'x-api-key' } },
    consumers: [{ sub: 'zoë-李', keys: [{ value: KEY }] }],
    routes: [
      { name: 'hello', path: '/hello', policies: ['per-ip'], auth: 'none' },
      { name: 'api', path: '/api/*', policies: ['per-consumer'] },
      { name: 'open', path: '/open/*' },
      { name: 'guarded', path: '/guarded', policies: ['per-ip'] },
    ],
    ...extra,
  });
}

let gw: Gateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

async function start(extra: Record<string, unknown> = {}): Promise<Gateway> {
  gw = await startGateway({ config: config(extra), logger: silent, port: 0, forwardAuthPort: 0 });
  return gw;
}

async function ask(g: Gateway, headers: Record<string, string>, path = '/') {
  const res = await fetch(`${g.forwardAuthUrl}${path}`, { headers });
  const body = await res.text();
  return { status: res.status, headers: res.headers, body, json: body ? (JSON.parse(body) as Record<string, unknown>) : undefined };
}

describe('forward-auth decisions', () => {
  it('admits exactly requestsAllowed per client, then answers 429 Problem Details with Retry-After and RateLimit headers', async () => {
    const g = await start();
    const h = { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/hello?x=1', 'x-forwarded-for': '203.0.113.7' };
    const first = await ask(g, h);
    expect(first.status).toBe(200);
    expect(first.body).toBe('');
    // IETF draft: a List of String items (the policy name) with parameters.
    const [item] = parseList(first.headers.get('ratelimit') as string);
    expect(item?.[0]).toBe('per-ip');
    expect(item?.[1].get('r')).toBe(2);
    expect(parseList(first.headers.get('ratelimit-policy') as string)[0]?.[1].get('q')).toBe(3);
    expect((await ask(g, h)).status).toBe(200);
    expect((await ask(g, h)).status).toBe(200);
    const refused = await ask(g, h);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(refused.json).toMatchObject({ status: 429, title: 'Too Many Requests', instance: '/hello' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Another client behind the same trusted proxy has its own bucket.
    expect((await ask(g, { ...h, 'x-forwarded-for': '203.0.113.8' })).status).toBe(200);
  });

  it('reads nginx-style X-Original-URI / X-Original-Method and absolute X-Original-URL', async () => {
    const g = await start();
    expect((await ask(g, { 'x-original-uri': '/hello', 'x-original-method': 'POST', 'x-forwarded-for': '198.51.100.1' })).status).toBe(200);
    expect((await ask(g, { 'x-original-url': 'https://api.example.com/hello?a=b', 'x-forwarded-for': '198.51.100.1' })).status).toBe(200);
    const r = await ask(g, { 'x-original-uri': '/hello', 'x-forwarded-for': '198.51.100.1' });
    expect(r.status).toBe(200);
    expect((await ask(g, { 'x-original-uri': '/hello', 'x-forwarded-for': '198.51.100.1' })).status).toBe(429);
  });

  it('believes X-Forwarded-For only from a proxy listed in server.trustProxy', async () => {
    const g = await start({ server: { trustProxy: false } });
    // Untrusted: every "client" is the proxy's socket address, one bucket.
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) expect((await ask(g, { 'x-forwarded-uri': '/hello', 'x-forwarded-for': ip })).status).toBe(200);
    expect((await ask(g, { 'x-forwarded-uri': '/hello', 'x-forwarded-for': '192.0.2.4' })).status).toBe(429);
  });

  it('authenticates consumers from the original headers and hands the upstream their (encoded) identity', async () => {
    const g = await start();
    const ok = await ask(g, { 'x-forwarded-uri': '/api/orders', 'x-api-key': KEY });
    expect(ok.status).toBe(200);
    expect(decodeURIComponent(ok.headers.get('x-sluice-consumer') as string)).toBe('zoë-李');
    expect((await ask(g, { 'x-forwarded-uri': '/api/orders', 'x-api-key': KEY })).status).toBe(200);
    expect((await ask(g, { 'x-forwarded-uri': '/api/orders', 'x-api-key': KEY })).status).toBe(429);
    const anon = await ask(g, { 'x-forwarded-uri': '/api/orders', 'x-sluice-consumer': 'admin' });
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const wrong = await ask(g, { 'x-forwarded-uri': '/api/orders', 'x-api-key': 'not-a-key-0123456789' });
    expect(wrong.status).toBe(401);
    expect(wrong.json).toMatchObject({ status: 401, instance: '/api/orders' });
  });

  it('charges refused authentications like the gateway does: guessing keys runs into the limit', async () => {
    const g = await start();
    const guess = (i: number) => ask(g, { 'x-forwarded-uri': '/guarded', 'x-forwarded-for': '198.51.100.77', 'x-api-key': `guess-${i}-0123456789abcdef` });
    expect([(await guess(1)).status, (await guess(2)).status, (await guess(3)).status]).toEqual([401, 401, 401]);
    const fourth = await guess(4);
    expect(fourth.status).toBe(429);
    expect(fourth.json).toMatchObject({ status: 429 });
  });

  it('answers bad input with a clear status, never an admit', async () => {
    const g = await start();
    const missing = await ask(g, { 'x-forwarded-method': 'GET' });
    expect(missing.status).toBe(400);
    expect(missing.json?.detail).toMatch(/X-Forwarded-Uri/);
    expect((await ask(g, { 'x-forwarded-uri': '/hello', 'x-forwarded-method': 'G E T' })).status).toBe(400);
    expect((await ask(g, { 'x-forwarded-uri': '/%2e%2e/hello' })).status).toBe(400);
    expect((await ask(g, { 'x-forwarded-uri': '/bad%zzencoding' })).status).toBe(400);
    expect((await ask(g, { 'x-forwarded-uri': 'not a uri' })).status).toBe(400);
    expect((await ask(g, { 'x-forwarded-uri': `/hello/${'a'.repeat(9000)}` })).status).toBe(414);
    const none = await ask(g, { 'x-forwarded-uri': '/nothing-here' });
    expect(none.status).toBe(404);
    expect(none.json?.detail).toBe('no route for GET /nothing-here');
  });

  it('routes without a policy are admitted with 200 and no rate-limit headers', async () => {
    const g = await start();
    const r = await ask(g, { 'x-forwarded-uri': '/open/x' });
    expect(r.status).toBe(200);
    expect(r.headers.get('ratelimit')).toBeNull();
  });

  it('on the /nginx path also sends the problem body as one X-Sluice-Problem header line (nginx cannot relay auth bodies)', async () => {
    const g = await start({ server: { trustProxy: false, buildId: 'build-ü' } });
    for (let i = 0; i < 3; i++) await ask(g, { 'x-original-uri': '/hello' }, '/nginx');
    const r = await ask(g, { 'x-original-uri': '/hello' }, '/nginx');
    expect(r.status).toBe(429);
    const line = r.headers.get('x-sluice-problem') as string;
    expect(line).toMatch(/^[\x20-\x7e]+$/);
    expect(JSON.parse(line)).toEqual(r.json);
    // Other front ends do not get the duplicate.
    const caddy = await ask(g, { 'x-forwarded-uri': '/hello' });
    expect(caddy.status).toBe(429);
    expect(caddy.headers.get('x-sluice-problem')).toBeNull();
  });

  it('decision-only routes are never proxied by the gateway listener', async () => {
    const g = await start();
    const res = await fetch(`${g.url}/hello`);
    expect(res.status).toBe(404);
  });

  it('a peer outside trustProxy is the client itself, whatever X-Forwarded-For it sends', async () => {
    const g = await start();
    // A "proxy" on 127.0.0.2 is not in trustProxy (127.0.0.1/32): it is the client.
    const from2 = () =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${g.forwardAuthUrl}/`, { localAddress: '127.0.0.2', headers: { 'x-forwarded-uri': '/hello', 'x-forwarded-for': '192.0.2.50' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    for (let i = 0; i < 3; i++) expect(await from2()).toBe(200);
    expect(await from2()).toBe(429);
    // The trusted proxy's own socket address is a different client.
    expect((await ask(g, { 'x-forwarded-uri': '/hello' })).status).toBe(200);
    // And the forged X-Forwarded-For the untrusted peer sent named nobody.
    expect((await ask(g, { 'x-forwarded-uri': '/hello', 'x-forwarded-for': '192.0.2.50' })).status).toBe(200);
  });
});

describe('forward-auth observability', () => {
  it('counts decisions like the gateway does: allowed, limited, and its own 401s as denied', async () => {
    const g = await start({ observability: { logs: { enabled: false } } });
    const h = { 'x-forwarded-uri': '/hello', 'x-forwarded-for': '203.0.113.99' };
    for (let i = 0; i < 4; i++) await ask(g, h);
    await ask(g, { 'x-forwarded-uri': '/api/orders', 'x-api-key': 'not-a-key-0123456789' });
    const text = await (g.observer as NonNullable<Gateway['observer']>).metrics.text();
    const count = (route: string, outcome: string) => Number(new RegExp(`sluice_decisions_total\\{[^}]*route="${route}"[^}]*outcome="${outcome}"[^}]*\\} (\\d+)`).exec(text)?.[1] ?? 0);
    expect(count('hello', 'allowed')).toBe(3);
    expect(count('hello', 'limited')).toBe(1);
    expect(count('api', 'denied')).toBe(1);
  });
});

describe('forward-auth on a bad day', () => {
  it('JWKS unreachable: 503 with Retry-After, and one throttled warning for many requests (not a line per request)', async () => {
    const warnings: string[] = [];
    const errors: string[] = [];
    const config = validateConfig({
      forwardAuth: { port: 0 },
      auth: { jwt: { jwksUrl: 'http://127.0.0.1:9/jwks.json' } },
      routes: [{ path: '/api/*' }],
    });
    gw = await startGateway({ config, logger: { info: () => {}, warn: (m) => warnings.push(m), error: (m) => errors.push(m) }, port: 0, forwardAuthPort: 0 });
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({ sub: 'zed' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setExpirationTime('5m').sign(privateKey);
    for (let i = 0; i < 5; i++) {
      const r = await ask(gw, { 'x-forwarded-uri': '/api/x', authorization: `Bearer ${token}` });
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('5');
    }
    expect(warnings.filter((m) => m === 'cannot check credentials')).toHaveLength(1);
    expect(errors).toEqual([]);
  });
});

describe('forward-auth config', () => {
  it('a route without upstream needs forwardAuth', () => {
    expect(() => validateConfig({ routes: [{ path: '/x' }] })).toThrow(SluiceConfigError);
    try {
      validateConfig({ routes: [{ path: '/x' }] });
    } catch (err) {
      expect((err as SluiceConfigError).field).toBe('routes[0].upstream');
    }
  });

  it('a decision-only route cannot strip a prefix', () => {
    expect(() => validateConfig({ forwardAuth: {}, routes: [{ path: '/x/*', stripPrefix: '/x' }] })).toThrow(/forwards nothing/);
  });

  it('a config with only decision-only routes needs no upstreams', () => {
    const c = validateConfig({ forwardAuth: {}, routes: [{ path: '/x' }] });
    expect(c.forwardAuth).toEqual({ host: '127.0.0.1', port: 8082 });
    expect(c.upstreams).toEqual({});
  });
});
