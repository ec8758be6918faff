/**
 * Spec: several gateway processes (`sluice serve`, spawned through the real CLI) sharing one Redis:
 * exact shared limits, consumers and overrides set through one instance binding on the other, key
 * revocation, reload on SIGHUP (a broken file refused, the old config kept), upstream down as 502,
 * and a clean exit on SIGTERM.
 */
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fireAtAll, gatewaysOnRedis } from '../support/gateways-on-redis.js';
import { admin, ADMIN_TOKEN, echoUpstream, statuses, writeConfig, type GatewayProcess } from './support.js';

const redis = gatewaysOnRedis('gw-test');
const LIMIT = 50;

let up: Awaited<ReturnType<typeof echoUpstream>>;
let a: GatewayProcess;
let b: GatewayProcess;
let file: string;

const config = (limit = LIMIT) => ({
  admin: { token: ADMIN_TOKEN },
  store: redis.store,
  upstreams: { api: { url: up.url }, down: { url: 'http://127.0.0.1:1' } },
  policies: {
    shared: { rateLimitBy: 'ip', requestsAllowed: limit, timeWindowMinutes: 60 },
    'per-consumer': { rateLimitBy: 'user', requestsAllowed: 100, timeWindowMinutes: 60, algorithm: 'sliding-window', onUnidentified: 'deny' },
  },
  routes: [
    { path: '/shared', upstream: 'api', policies: ['shared'] },
    { path: '/api/*', upstream: 'api', policies: ['per-consumer'] },
    { path: '/down', upstream: 'down' },
  ],
});

/** Poll `check` until it is true (the other instance applies a change when its pub/sub message arrives). */
async function eventually(check: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  up = await echoUpstream();
  file = writeConfig(config());
  [a, b] = (await redis.spawn(file)) as [GatewayProcess, GatewayProcess];
}, 60_000);

afterAll(async () => {
  await redis.close();
  await up?.close();
});

describe('two gateway processes on one Redis', () => {
  it(`admit exactly the limit (${LIMIT}) between them under concurrent load`, async () => {
    const all = await fireAtAll([a, b], '/shared', (3 * LIMIT) / 2);
    expect(all.filter((s) => s === 200)).toHaveLength(LIMIT);
    expect(all.filter((s) => s === 429)).toHaveLength(2 * LIMIT);
  });

  it('a consumer created and an override set through A bind on B', async () => {
    const c = await admin(a.adminUrl, 'POST', '/consumers', { sub: 'acme', issueKey: true });
    expect(c.status).toBe(201);
    const key = c.json.key.key as string;
    expect((await admin(a.adminUrl, 'PUT', '/consumers/acme/overrides/per-consumer', { requestsAllowed: 3 })).status).toBe(200);
    await eventually(async () => (await admin(b.adminUrl, 'GET', '/consumers/acme')).json?.limits?.[0]?.source === 'override', 'B sees the override');
    expect(await statuses(`${b.url}/api/x`, 4, { authorization: `Bearer ${key}` })).toEqual([200, 200, 200, 429]);
    // The counter is shared too: A refuses as well.
    expect(await statuses(`${a.url}/api/x`, 1, { authorization: `Bearer ${key}` })).toEqual([429]);
  });

  it('a key revoked through A is refused at once on A, and on B as soon as B has the change', async () => {
    await admin(a.adminUrl, 'POST', '/consumers', { sub: 'revokee' });
    const k = await admin(a.adminUrl, 'POST', '/consumers/revokee/keys');
    const h = { authorization: `Bearer ${k.json.key}` };
    await eventually(async () => (await fetch(`${b.url}/api/x`, { headers: h })).status === 200, 'B accepts the new key');
    expect((await admin(a.adminUrl, 'DELETE', `/consumers/revokee/keys/${k.json.id}`)).status).toBe(204);
    expect((await fetch(`${a.url}/api/x`, { headers: h })).status).toBe(401);
    await eventually(async () => (await admin(b.adminUrl, 'GET', '/consumers/revokee')).json?.keys?.length === 0, 'B drops the key');
    expect((await fetch(`${b.url}/api/x`, { headers: h })).status).toBe(401);
  });

  it('upstream down: 502 problem+json', async () => {
    const r = await fetch(`${a.url}/down`);
    expect(r.status).toBe(502);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(await r.json()).toMatchObject({ type: 'https://httpproblems.com/http-status/502', status: 502, instance: '/down' });
  });

  it('SIGHUP reloads: a broken file is refused (logged with its field) and the old config serves; a good one applies', async () => {
    const bad = config();
    (bad.policies.shared as Record<string, unknown>).requestsAllowed = -5;
    writeFileSync(file, stringify(bad));
    a.proc.kill('SIGHUP');
    await eventually(async () => a.stderr().includes('config reload refused'), 'A logs the refusal');
    expect(a.stderr()).toContain('policies.shared.requestsAllowed');
    expect((await fetch(`${a.url}/shared`)).status).toBe(429); // still the old config (limit used up)

    const next = config();
    next.routes.push({ path: '/added', upstream: 'api', policies: [] });
    writeFileSync(file, stringify(next));
    a.proc.kill('SIGHUP');
    await eventually(async () => (await fetch(`${a.url}/added`)).status === 200, 'A serves the new route');
  });

  it('SIGTERM: exits 0', async () => {
    expect(await b.stop('SIGTERM')).toBe(0);
  });
});
