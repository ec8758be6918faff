/**
 * Spec: consumers, authentication, tiers, runtime overrides, the admin API and config reload, on
 * one in-process gateway (memory store) with a real upstream on loopback.
 */
import { writeFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../src/gateway/consumers.js';
import { startGateway, type Gateway } from '../../src/gateway/server.js';
import { admin, ADMIN_TOKEN, quiet, echoUpstream, statuses, writeConfig } from './support.js';

const SECRET = 'jwt-shared-secret-0123456789-abcdefghij';
let up: Awaited<ReturnType<typeof echoUpstream>>;
let gw: Gateway;
let file: string;

const config = (perConsumer = 3) => ({
  admin: { token: ADMIN_TOKEN },
  upstreams: { api: { url: up.url } },
  policies: {
    'per-consumer': { rateLimitBy: 'user', requestsAllowed: perConsumer, timeWindowMinutes: 60, onUnidentified: 'deny', headerMode: 'ietf', algorithm: 'sliding-window' },
    'per-key': { rateLimitBy: 'apiKey', requestsAllowed: 100, timeWindowMinutes: 60 },
    shared: { rateLimitBy: 'ip', requestsAllowed: 4, timeWindowMinutes: 60 },
  },
  tiers: { pro: { requestsAllowed: 6 }, gold: { policies: { 'per-consumer': { requestsAllowed: 8 } } } },
  auth: { apiKey: { header: 'x-api-key' }, jwt: { secret: SECRET } },
  consumers: [
    { sub: 'free-app', keys: [{ value: 'free-key-0123456789abcdef' }] },
    { sub: 'pro-app', tier: 'pro', keys: [{ hash: hashKey('pro-key-0123456789abcdef') }] },
  ],
  routes: [
    { path: '/api/*', upstream: 'api', policies: ['per-consumer'] },
    { path: '/keyed/*', upstream: 'api', policies: ['per-key'], auth: 'required' },
    { path: '/a', upstream: 'api', policies: ['shared'] },
    { path: '/b', upstream: 'api', policies: ['shared'] },
    { path: '/open', upstream: 'api' },
  ],
});

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const jwt = (claims: Record<string, unknown>, secret = SECRET, exp = '1h') =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(exp).sign(new TextEncoder().encode(secret));

beforeAll(async () => {
  up = await echoUpstream();
  file = writeConfig(config());
  gw = await startGateway({ configFile: file, logger: quiet, port: 0, adminPort: 0, env: {} });
});
afterAll(async () => {
  await gw?.close();
  await up?.close();
});

describe('authentication', () => {
  it('API key from Authorization: Bearer or the configured header; the consumer reaches the upstream', async () => {
    const a = await fetch(`${gw.url}/open`, { headers: bearer('free-key-0123456789abcdef') });
    expect(await a.json()).toMatchObject({ consumer: 'free-app' });
    const b = await fetch(`${gw.url}/open`, { headers: { 'x-api-key': 'pro-key-0123456789abcdef' } });
    expect(await b.json()).toMatchObject({ consumer: 'pro-app', tier: 'pro' });
  });

  it('a wrong key is 401 even on an optional route; no credentials is anonymous there', async () => {
    const r = await fetch(`${gw.url}/open`, { headers: bearer('wrong-key') });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await r.json()).toMatchObject({ status: 401, title: 'Unauthorized', detail: 'unknown or revoked API key' });
    expect(await (await fetch(`${gw.url}/open`)).json()).toMatchObject({ consumer: null });
  });

  it('JWT (HS256): sub and tier claims; bad signature and expired tokens are 401', async () => {
    const ok = await fetch(`${gw.url}/open`, { headers: bearer(await jwt({ sub: 'jwt-user', tier: 'gold' })) });
    expect(await ok.json()).toMatchObject({ consumer: 'jwt-user', tier: 'gold' });
    const forged = await fetch(`${gw.url}/open`, { headers: bearer(await jwt({ sub: 'x' }, 'another-secret-0123456789-abcdefghijkl')) });
    expect(forged.status).toBe(401);
    const expired = await fetch(`${gw.url}/open`, { headers: bearer(await jwt({ sub: 'x' }, SECRET, '-1h')) });
    expect(expired.status).toBe(401);
  });

  it('a route whose per-consumer policy says onUnidentified: deny refuses anonymous calls with 401', async () => {
    expect((await fetch(`${gw.url}/api/x`)).status).toBe(401);
    expect((await fetch(`${gw.url}/keyed/x`)).status).toBe(401);
  });
});

describe('limits per consumer, tier and override', () => {
  it('rateLimitBy user: the policy default, the tier default and a per-policy tier limit', async () => {
    expect(await statuses(`${gw.url}/api/1`, 4, bearer('free-key-0123456789abcdef'))).toEqual([200, 200, 200, 429]);
    expect(await statuses(`${gw.url}/api/1`, 7, bearer('pro-key-0123456789abcdef'))).toEqual([200, 200, 200, 200, 200, 200, 429]);
    const gold = bearer(await jwt({ sub: 'gold-user', tier: 'gold' }));
    expect(await statuses(`${gw.url}/api/1`, 9, gold)).toEqual([...Array(8).fill(200), 429]);
  });

  it('the 429 is the HTTP layer\'s problem+json with IETF headers naming the policy', async () => {
    const r = await fetch(`${gw.url}/api/1`, { headers: bearer('free-key-0123456789abcdef') });
    expect(r.status).toBe(429);
    expect(r.headers.get('ratelimit-policy')).toBe('"per-consumer";q=3;w=3600');
    expect(await r.json()).toMatchObject({ type: 'https://httpproblems.com/http-status/429', detail: 'Rate limit exceeded', instance: '/api/1' });
  });

  it('two routes naming one policy share its counter', async () => {
    const s = [...(await statuses(`${gw.url}/a`, 2)), ...(await statuses(`${gw.url}/b`, 3))];
    expect(s).toEqual([200, 200, 200, 200, 429]);
  });

  it('an override set at runtime binds at once, state and reset work, removing it restores the tier', async () => {
    const created = await admin(gw.adminUrl!, 'POST', '/consumers', { sub: 'acme', tier: 'pro', metadata: { plan: 'custom' }, issueKey: true });
    expect(created.status).toBe(201);
    const key = created.json.key.key as string;
    expect(key).toMatch(/^sk_/);
    const h = bearer(key);
    expect(await statuses(`${gw.url}/api/x`, 2, h)).toEqual([200, 200]);
    expect((await admin(gw.adminUrl!, 'PUT', '/consumers/acme/overrides/per-consumer', { requestsAllowed: 3 })).status).toBe(200);
    expect(await statuses(`${gw.url}/api/x`, 2, h)).toEqual([200, 429]); // 3 used of 3
    const st = await admin(gw.adminUrl!, 'GET', '/consumers/acme/state');
    expect(st.json.state).toContainEqual(expect.objectContaining({ policy: 'per-consumer', limit: 3, source: 'override', remaining: 0 }));
    const d = await admin(gw.adminUrl!, 'GET', '/consumers/acme');
    expect(d.json.limits).toContainEqual({ policy: 'per-consumer', requestsAllowed: 3, windowMs: 3_600_000, source: 'override' });
    expect((await admin(gw.adminUrl!, 'POST', '/consumers/acme/reset')).status).toBe(204);
    expect(await statuses(`${gw.url}/api/x`, 4, h)).toEqual([200, 200, 200, 429]);
    expect((await admin(gw.adminUrl!, 'DELETE', '/consumers/acme/overrides/per-consumer')).status).toBe(204);
    expect(await statuses(`${gw.url}/api/x`, 4, h)).toEqual([200, 200, 200, 429]); // pro: 6 per hour, 3 used before + 3
  });

  it('a revoked key is refused from the next request; a deleted consumer\'s keys too', async () => {
    const c = await admin(gw.adminUrl!, 'POST', '/consumers', { sub: 'temp' });
    const k = await admin(gw.adminUrl!, 'POST', '/consumers/temp/keys');
    expect(k.status).toBe(201);
    const k2 = await admin(gw.adminUrl!, 'POST', '/consumers/temp/keys');
    expect(c.status).toBe(201);
    expect((await fetch(`${gw.url}/open`, { headers: bearer(k.json.key) })).status).toBe(200);
    expect((await admin(gw.adminUrl!, 'DELETE', `/consumers/temp/keys/${k.json.id}`)).status).toBe(204);
    expect((await fetch(`${gw.url}/open`, { headers: bearer(k.json.key) })).status).toBe(401);
    expect((await fetch(`${gw.url}/open`, { headers: bearer(k2.json.key) })).status).toBe(200);
    expect((await admin(gw.adminUrl!, 'DELETE', '/consumers/temp')).status).toBe(204);
    expect((await fetch(`${gw.url}/open`, { headers: bearer(k2.json.key) })).status).toBe(401);
  });
});

describe('admin API', () => {
  it('refuses requests without a token, with a wrong one, or one of another length (401 problem+json)', async () => {
    for (const headers of [{}, bearer('wrong-token-wrong-token-000'), bearer('x'), bearer(`${ADMIN_TOKEN}x`), { authorization: ADMIN_TOKEN }]) {
      const r = await fetch(`${gw.adminUrl}/consumers`, { headers });
      expect(r.status).toBe(401);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
    }
    const ok = await fetch(`${gw.adminUrl}/consumers`, { headers: bearer(ADMIN_TOKEN) });
    expect(ok.status).toBe(200);
    const list = (await ok.json()) as { consumers: { consumer: { sub: string }; keys: Record<string, unknown>[] }[] };
    expect(list.consumers.map((c) => c.consumer.sub)).toEqual(expect.arrayContaining(['free-app', 'pro-app']));
    // Keys are listed by id; neither the key nor its hash is ever returned.
    for (const c of list.consumers) for (const k of c.keys) expect(Object.keys(k).sort()).toEqual(['createdAt', 'id', 'sub', ...('fromConfig' in k ? ['fromConfig'] : [])].sort());
  });

  it('validates input: unknown tier, bad limits, unknown policy, duplicate consumer, config consumers are read-only', async () => {
    expect((await admin(gw.adminUrl!, 'POST', '/consumers', { sub: 'x1', tier: 'platinum' })).status).toBe(400);
    expect((await admin(gw.adminUrl!, 'POST', '/consumers', { sub: 'x1', extra: 1 })).status).toBe(400);
    expect((await admin(gw.adminUrl!, 'PUT', '/consumers/x1/overrides/per-consumer', { requestsAllowed: 0 })).status).toBe(400);
    expect((await admin(gw.adminUrl!, 'PUT', '/consumers/x1/overrides/shared', { requestsAllowed: 5 })).status).toBe(400);
    expect((await admin(gw.adminUrl!, 'POST', '/consumers', { sub: 'free-app' })).status).toBe(409);
    expect((await admin(gw.adminUrl!, 'DELETE', '/consumers/free-app')).status).toBe(409);
    expect((await admin(gw.adminUrl!, 'DELETE', '/consumers/nobody')).status).toBe(404);
    expect((await fetch(`${gw.adminUrl}/health`)).status).toBe(200);
  });
});

describe('config reload', () => {
  it('a broken config is refused and the old one keeps serving; a good one applies without restart', async () => {
    writeFileSync(file, 'routes: [ this is not valid');
    expect(await gw.reload()).toBe(false);
    expect((await fetch(`${gw.url}/open`)).status).toBe(200);
    const bad = config();
    (bad.routes[0] as { upstream: string }).upstream = 'missing';
    writeFileSync(file, stringify(bad));
    expect((await admin(gw.adminUrl!, 'POST', '/reload')).status).toBe(409);
    expect(gw.state.routes[0]?.config.upstream).toBe('api');

    const next = config(1);
    next.routes.push({ path: '/new', upstream: 'api' });
    writeFileSync(file, stringify(next));
    expect((await admin(gw.adminUrl!, 'POST', '/reload')).status).toBe(200);
    expect((await fetch(`${gw.url}/new`)).status).toBe(200);
    const fresh = bearer(await jwt({ sub: `reload-${Date.now()}` }));
    expect(await statuses(`${gw.url}/api/r`, 2, fresh)).toEqual([200, 429]);
  });
});
