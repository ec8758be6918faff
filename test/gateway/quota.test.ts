/**
 * Spec: quotas in the gateway YAML (Zuplo's quota-inbound names): a policy with `period` and
 * `allowances`, referenced by routes like any policy; tiers set `allowances`; a consumer's own
 * billing anchor through the admin API; `GET /consumers/:sub/usage`; bad quota config refused at
 * startup with the field path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SluiceConfigError } from '../../src/core/errors.js';
import { validateConfig } from '../../src/gateway/config.js';
import { startGateway, type Gateway } from '../../src/gateway/server.js';
import { runReport } from '../../src/observability/report.js';
import { admin, ADMIN_TOKEN, echoUpstream, quiet, upstream, writeConfig } from './support.js';

let up: Awaited<ReturnType<typeof echoUpstream>>;
let failing: Awaited<ReturnType<typeof upstream>>;
let gw: Gateway;

const config = () => ({
  admin: { token: ADMIN_TOKEN },
  upstreams: { api: { url: up.url }, flaky: { url: failing.url } },
  policies: {
    monthly: { quotaBy: 'user', period: 'monthly', allowances: { requests: 3 }, quotaAnchorMode: 'calendar', headerMode: 'ietf' },
    'daily-2xx': { quotaBy: 'user', period: 'daily', allowances: { requests: 2 }, quotaOnStatusCodes: '200-399' },
    busy: { rateLimitBy: ['ip', 'header:x-tenant'], requestsAllowed: 1, timeWindowMinutes: 1, statusCode: 503, detail: 'Busy, try later', headers: { 'x-plan-upgrade': '/pricing' } },
  },
  tiers: { pro: { allowances: { requests: 5 } } },
  auth: { apiKey: { header: 'x-api-key' } },
  consumers: [
    { sub: 'free-app', keys: [{ value: 'free-key-0123456789abcdef' }] },
    { sub: 'pro-app', tier: 'pro', keys: [{ value: 'pro-key-0123456789abcdef' }] },
    { sub: 'flaky-app', keys: [{ value: 'flaky-key-0123456789abcdef' }] },
  ],
  routes: [
    { path: '/api/*', upstream: 'api', policies: ['monthly'], auth: 'required' },
    { path: '/flaky/*', upstream: 'flaky', policies: ['daily-2xx'], auth: 'required' },
    { path: '/busy', upstream: 'api', policies: ['busy'] },
  ],
});

const get = async (path: string, key: string) => {
  const r = await fetch(`${gw.url}${path}`, { headers: { 'x-api-key': key } });
  return { status: r.status, headers: r.headers, body: await r.text() };
};

beforeAll(async () => {
  up = await echoUpstream();
  let n = 0;
  // Fails every other request with 502.
  failing = await upstream((_req, res) => {
    res.writeHead(n++ % 2 === 0 ? 502 : 200);
    res.end();
  });
  gw = await startGateway({ configFile: writeConfig(config()), logger: quiet, port: 0, adminPort: 0, env: {} });
});
afterAll(async () => {
  await gw?.close();
  await up?.close();
  await failing?.close();
});

describe('a monthly quota in the YAML', () => {
  it('admits the allowance, then 429 with "Quota exhausted", Retry-After to the 1st of next month and IETF headers naming the quota', async () => {
    for (let i = 0; i < 3; i++) expect((await get('/api/x', 'free-key-0123456789abcdef')).status).toBe(200);
    const r = await get('/api/x', 'free-key-0123456789abcdef');
    expect(r.status).toBe(429);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    const body = JSON.parse(r.body) as { detail: string };
    const now = new Date();
    const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
    expect(body.detail).toBe(`Quota exhausted: the monthly allowance of 3 requests for "monthly" is used up; it renews at ${new Date(next).toISOString()}`);
    const retry = Number(r.headers.get('retry-after'));
    expect(Math.abs(retry - (next - Date.now()) / 1000)).toBeLessThan(60);
    expect(r.headers.get('ratelimit-policy')).toBe('"monthly";q=3;w=2592000');
    expect(r.headers.get('ratelimit')).toMatch(/^"monthly";r=0;t=\d+$/);
  });

  it("a tier's allowances apply to its consumers", async () => {
    const codes = [];
    for (let i = 0; i < 6; i++) codes.push((await get('/api/x', 'pro-key-0123456789abcdef')).status);
    expect(codes).toEqual([200, 200, 200, 200, 200, 429]);
  });

  it('GET /consumers/:sub/usage shows used, remaining, the period and when it resets', async () => {
    const u = await admin(gw.adminUrl!, 'GET', '/consumers/pro-app/usage');
    expect(u.status).toBe(200);
    const row = (u.json.usage as { policy: string }[]).find((x) => x.policy === 'monthly');
    const now = new Date();
    expect(row).toEqual({
      policy: 'monthly',
      kind: 'quota',
      period: 'monthly',
      allowance: 5,
      used: 5,
      remaining: 0,
      windowMs: 2_592_000_000,
      resetsAt: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString(),
      source: 'tier',
    });
  });

  it('sluice report --consumer prints a usage line per policy', async () => {
    let out = '';
    const sink = { write: (c: string) => ((out += c), true) } as unknown as NodeJS.WritableStream;
    const code = await runReport({ admin: gw.adminUrl!, token: ADMIN_TOKEN, consumer: 'pro-app' }, sink, sink);
    expect(code).toBe(0);
    const now = new Date();
    const reset = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString();
    expect(out).toBe(`Usage of pro-app\nusage  monthly  5/5 (100.0 %)  monthly quota, resets ${reset}\nusage  daily-2xx  0/5 (0.0 %)  daily quota, starts at the next call\n`);
  });

  it("a consumer's billing anchor (admin PATCH) moves its periods: the count starts afresh in the anchor's period", async () => {
    const anchor = new Date(Date.now() - 3 * 86_400_000);
    anchor.setUTCHours(0, 0, 0, 0);
    const created = await admin(gw.adminUrl!, 'POST', '/consumers', { sub: 'billed', issueKey: true });
    expect(created.status).toBe(201);
    const key = created.json.key.key as string;
    expect((await get('/api/x', key)).status).toBe(200);
    const patched = await admin(gw.adminUrl!, 'PATCH', '/consumers/billed', { billingAnchor: anchor.toISOString() });
    expect(patched.status).toBe(200);
    expect(patched.json.consumer.billingAnchor).toBe(anchor.getTime());
    for (let i = 0; i < 3; i++) expect((await get('/api/x', key)).status).toBe(200);
    expect((await get('/api/x', key)).status).toBe(429);
    const u = await admin(gw.adminUrl!, 'GET', '/consumers/billed/usage');
    expect(u.json.billingAnchor).toBe(anchor.toISOString());
    const row = (u.json.usage as { policy: string; resetsAt: string; used: number }[]).find((x) => x.policy === 'monthly') as { resetsAt: string; used: number };
    expect(row.used).toBe(3);
    // The period runs one month from the anchor's day (clamped to the month's length).
    const d = new Date(row.resetsAt);
    expect(d.getUTCHours()).toBe(0);
    expect(d.getTime()).toBeGreaterThan(Date.now() + 20 * 86_400_000);
    expect(d.getUTCDate()).toBe(Math.min(anchor.getUTCDate(), new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate()));
  });

  it('a billing anchor in the future, or no date, is a 400', async () => {
    await admin(gw.adminUrl!, 'POST', '/consumers', { sub: 'bad-anchor' });
    const future = await admin(gw.adminUrl!, 'PATCH', '/consumers/bad-anchor', { billingAnchor: '2999-01-01T00:00:00Z' });
    expect(future.status).toBe(400);
    expect(future.json.detail).toBe('billingAnchor must not be in the future');
    expect((await admin(gw.adminUrl!, 'PATCH', '/consumers/bad-anchor', { billingAnchor: 'soon' })).status).toBe(400);
  });
});

describe('quotaOnStatusCodes in the YAML', () => {
  it('only 2xx/3xx responses use the quota: upstream 502s are free', async () => {
    const codes = [];
    for (let i = 0; i < 6; i++) codes.push((await get('/flaky/x', 'flaky-key-0123456789abcdef')).status);
    // 502, 200, 502, 200 (allowance used), then refused before the upstream.
    expect(codes).toEqual([502, 200, 502, 200, 429, 429]);
  });
});

describe('custom refusals and compound keys in the YAML', () => {
  it('statusCode 503, detail and headers; the key is (ip, x-tenant)', async () => {
    const call = async (tenant: string) => {
      const r = await fetch(`${gw.url}/busy`, { headers: { 'x-tenant': tenant } });
      return { status: r.status, headers: r.headers, body: await r.text() };
    };
    expect((await call('a')).status).toBe(200);
    const refused = await call('a');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('x-plan-upgrade')).toBe('/pricing');
    expect(JSON.parse(refused.body)).toMatchObject({ status: 503, detail: 'Busy, try later' });
    expect((await call('b')).status).toBe(200);
  });
});

describe('bad quota config is refused at startup with the field path', () => {
  const base = {
    upstreams: { api: { url: 'http://127.0.0.1:1' } },
    routes: [{ path: '/', upstream: 'api', policies: ['q'] }],
  };
  const cases: [object, string, RegExp][] = [
    [{ policies: { q: { period: 'yearly', allowances: { requests: 1 } } } }, 'policies.q.period', /Invalid option/],
    [{ policies: { q: { period: 'monthly', allowances: { requests: 1.5 } } } }, 'policies.q.allowances.requests', /expected int/],
    [{ policies: { q: { period: 'monthly', allowances: { requests: 1 }, quotaAnchorMode: 'calendar', anchor: '2999-01-01T00:00:00Z' } } }, 'policies.q.anchor', /future/],
    [{ policies: { q: { period: 'monthly', allowances: { requests: 1 }, quotaBy: 'user', rateLimitBy: 'ip' } } }, 'policies.q.quotaBy', /not both/],
    [{ policies: { q: { period: 'monthly', allowances: { requests: 1 } } }, tiers: { pro: { policies: { q: { requestsAllowed: 5 } } } } }, 'tiers.pro.policies.q.allowances', /is a quota/],
    [{ policies: { q: { requestsAllowed: 1, timeWindowMinutes: 1 } }, tiers: { pro: { policies: { q: { allowances: { requests: 5 } } } } } }, 'tiers.pro.policies.q.allowances', /not a quota/],
    [{ policies: { q: { requestsAllowed: 1, timeWindowMinutes: 1, blockDurationMinutes: -1 } } }, 'policies.q.blockDurationMinutes', /expected number to be >0/],
    [{ policies: { q: { requestsAllowed: 1, timeWindowMinutes: 1, blockDurationMinutes: 1, blockDurationSeconds: 5 } } }, 'policies.q.blockDurationSeconds', /not both/],
    [{ policies: { q: { requestsAllowed: 1, timeWindowMinutes: 1, blockDurationMinutes: 1, blockEscalation: { multiplier: 0.5 } } } }, 'policies.q.blockEscalation.multiplier', /expected number to be >=1/],
    [{ policies: { q: { requestsAllowed: 1, timeWindowMinutes: 1, blockDurationMinutes: 1, blockEscalation: { resetAfterMinutes: -1 } } } }, 'policies.q.blockEscalation.resetAfterMinutes', /expected number to be >0/],
    [{ policies: { q: { requestsAllowed: 1, timeWindowMinutes: 1, blockDurationMinutes: 60, blockEscalation: { maxBlockMinutes: 30 } } } }, 'policies.q.blockEscalation.maxBlockMinutes', /at least the block duration/],
    [{ policies: { q: { requestsAllowed: 1, timeWindowMinutes: 1, blockEscalation: { multiplier: 2 } } } }, 'policies.q.blockEscalation', /needs blockDurationMinutes/],
  ];
  for (const [extra, field, message] of cases) {
    it(field, async () => {
      let err: unknown;
      try {
        // The schema first; what only policy compilation finds, the gateway's startup.
        validateConfig({ ...base, ...extra }, {});
        const started = await startGateway({ configFile: writeConfig({ ...base, ...extra }), logger: quiet, port: 0, env: {} });
        await started.close();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SluiceConfigError);
      expect((err as SluiceConfigError).field).toBe(field);
      expect((err as Error).message).toMatch(message);
    });
  }
});
