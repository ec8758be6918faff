/**
 * Spec: cost per request in the gateway YAML (issue 13 item 2): `cost` on a policy and on a route
 * (the policy's own wins), a cost from a request header, and bad costs refused at startup and by
 * `sluice check` with the field path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SluiceConfigError } from '../../src/core/errors.js';
import { validateConfig } from '../../src/gateway/config.js';
import { startGateway, type Gateway } from '../../src/gateway/server.js';
import { echoUpstream, quiet, runCli, upstream, writeConfig } from './support.js';

let up: Awaited<ReturnType<typeof echoUpstream>>;
/** An LLM-like upstream: reports the tokens a request used in `x-tokens-used` (from the request's `x-want-tokens`; none without it). */
let llm: Awaited<ReturnType<typeof upstream>>;
let gw: Gateway;

const window = { requestsAllowed: 10, timeWindowMinutes: 1, algorithm: 'fixed-window', headerMode: 'ietf' };
const config = () => ({
  forwardAuth: {},
  upstreams: { api: { url: up.url }, llm: { url: llm.url } },
  policies: {
    heavy: { rateLimitBy: 'ip', ...window, cost: 2 },
    budget: { rateLimitBy: 'ip', ...window, requestsAllowed: 20 },
    spike: { rateLimitBy: 'ip', ...window, requestsAllowed: 100, cost: 1 },
    batch: { rateLimitBy: 'ip', ...window, requestsAllowed: 100, cost: { header: 'x-batch-size', max: 25 } },
    // GCRA, 10 tokens per 100 s: one token per 10 s, a bucket of 10.
    tokens: { rateLimitBy: 'ip', requestsAllowed: 10, timeWindowSeconds: 100, headerMode: 'ietf', cost: { responseHeader: 'x-tokens-used', max: 1000 } },
    'route-tokens': { rateLimitBy: 'ip', requestsAllowed: 10, timeWindowSeconds: 100, headerMode: 'ietf' },
    gone: { rateLimitBy: 'ip', requestsAllowed: 10, timeWindowSeconds: 100, headerMode: 'ietf', cost: { responseHeader: 'x-tokens-used', max: 6 } },
    'fa-tokens': { rateLimitBy: 'ip', requestsAllowed: 10, timeWindowSeconds: 100, cost: { responseHeader: 'x-tokens-used', max: 1000, reserve: 2 } },
  },
  routes: [
    { path: '/heavy', upstream: 'api', policies: ['heavy'] },
    { path: '/report', upstream: 'api', policies: ['budget', 'spike'], cost: 5 },
    { path: '/batch', upstream: 'api', policies: ['batch'] },
    { path: '/llm', upstream: 'llm', policies: ['tokens'] },
    { path: '/llm2', upstream: 'llm', policies: ['route-tokens'], cost: { responseHeader: 'x-tokens-used', max: 1000, reserve: 2 } },
    { path: '/fa', upstream: 'llm', policies: ['fa-tokens'] },
    { path: '/gone', upstream: 'llm', policies: ['gone'] },
  ],
});

const get = async (path: string, headers: Record<string, string> = {}) => {
  const r = await fetch(`${gw.url}${path}`, { headers });
  return { status: r.status, headers: r.headers, body: await r.text() };
};

/** The hanging upstream call of the abandoned-request spec: when it arrived, when it was closed. */
const hung = (() => {
  let arrived!: () => void;
  let gone!: () => void;
  const next = new Promise<void>((r) => (arrived = r));
  const closed = new Promise<void>((r) => (gone = r));
  return { next, closed, arrived: () => arrived(), gone: () => gone() };
})();

beforeAll(async () => {
  up = await echoUpstream();
  llm = await upstream((req, res) => {
    const want = req.headers['x-want-tokens'];
    if (req.headers['x-hang'] !== undefined) {
      // Never answers: the client gives up first.
      hung.arrived();
      req.on('close', () => hung.gone());
      return;
    }
    res.writeHead(200, typeof want === 'string' ? { 'x-tokens-used': want } : {});
    res.end('{"choices":[]}');
  });
  gw = await startGateway({ configFile: writeConfig(config()), logger: quiet, port: 0, forwardAuthPort: 0, env: {} });
});
afterAll(async () => {
  await gw?.close();
  await up?.close();
  await llm?.close();
});

describe('static cost in the YAML', () => {
  it('a policy with cost: 2 admits 5 requests of its 10 units', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) codes.push((await get('/heavy')).status);
    expect(codes).toEqual([200, 200, 200, 200, 200, 429]);
  });

  it("a route's cost applies to its policies without their own; the policy's own cost wins", async () => {
    const r = await get('/report');
    expect(r.status).toBe(200);
    expect(r.headers.get('ratelimit')).toContain('"budget";r=15');
    expect(r.headers.get('ratelimit')).toContain('"spike";r=99');
  });
});

describe('cost from a request header', () => {
  it('charges the header value, a missing header charges max, hostile values are a 400 naming the header', async () => {
    expect((await get('/batch', { 'x-batch-size': '10' })).headers.get('ratelimit')).toContain('r=90');
    expect((await get('/batch')).headers.get('ratelimit')).toContain('r=65');
    for (const v of ['-1', '1e9', '0x10', '3, 3', '0', '26', 'x'.repeat(4000)]) {
      const r = await get('/batch', { 'x-batch-size': v });
      expect(r.status, v.slice(0, 20)).toBe(400);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      expect(JSON.parse(r.body).detail).toBe('Invalid request cost: header x-batch-size must be a whole number from 1 to 25');
    }
    // Node's parser strips the optional whitespace around a field value: " 3 " is 3.
    expect((await get('/batch', { 'x-batch-size': ' 3 ' })).headers.get('ratelimit')).toContain('r=62');
  });
});

/** GETs until one is refused (the charge lands when the proxied response finishes). */
async function firstRefusal(path: string): Promise<{ status: number; headers: Headers; body: string }> {
  for (let i = 0; i < 50; i++) {
    const r = await get(path);
    if (r.status === 429) return r;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error(`${path} was never refused`);
}

describe("cost from the upstream's response header", () => {
  it('admits on the reserve, charges the x-tokens-used the upstream reports, refuses the overdraft with Retry-After until paid back', async () => {
    const r = await get('/llm', { 'x-want-tokens': '25' });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-tokens-used')).toBe('25');
    expect(r.headers.get('ratelimit')).toBe('"tokens";r=9;t=10');
    const refused = await firstRefusal('/llm');
    // 25 tokens into a bucket of 10: 15 owed at 10 s each, plus 10 s for the next token.
    const wait = Number(refused.headers.get('retry-after'));
    expect(wait).toBeGreaterThan(150);
    expect(wait).toBeLessThanOrEqual(160);
    expect(refused.headers.get('ratelimit')).toMatch(/^"tokens";r=0;t=\d+$/);
    expect(JSON.parse(refused.body)).toMatchObject({ status: 429, detail: 'Rate limit exceeded' });
  });

  it('a client that leaves before the upstream answers is charged max, not only the reserve (leaving early is never cheaper)', async () => {
    // A bucket of 10, max 6: the abandoned request takes its reserve (1) and then 5 more.
    const ac = new AbortController();
    const abandoned = fetch(`${gw.url}/gone`, { headers: { 'x-hang': '1' }, signal: ac.signal }).catch(() => undefined);
    await hung.next; // the upstream has the request
    ac.abort();
    await abandoned;
    await hung.closed; // the gateway aborted the upstream call: it has seen the client go
    await new Promise((r) => setTimeout(r, 100));
    const r = await get('/gone', { 'x-want-tokens': '1' });
    expect(r.status).toBe(200);
    // 10 - 6 (the abandoned call) - 1 (this one); only the reserve would have left 8.
    expect(r.headers.get('ratelimit')).toMatch(/^"gone";r=3;t=\d+$/);
  });

  it("a route's response cost applies with its reserve; a response without the header costs only the reserve", async () => {
    // reserve 2 of a bucket of 10: five requests whose upstream reports nothing.
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) codes.push((await get('/llm2')).status);
    expect(codes).toEqual([200, 200, 200, 200, 200, 429]);
  });
});

describe('cost from the response behind forward-auth', () => {
  it('a proxied route decided for nginx/Caddy/Traefik never sees the response: only the reserve is charged', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await fetch(`${gw.forwardAuthUrl}/`, { headers: { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/fa' } });
      await r.arrayBuffer();
      codes.push(r.status);
    }
    // A bucket of 10, reserve 2: five decisions.
    expect(codes).toEqual([200, 200, 200, 200, 200, 429]);
  });
});

describe('bad costs in the YAML', () => {
  const base = { upstreams: { api: { url: 'http://127.0.0.1:1' } }, policies: { p: { requestsAllowed: 10, timeWindowMinutes: 1 } }, routes: [{ path: '/x', upstream: 'api', policies: ['p'] }] };
  const withPolicyCost = (cost: unknown) => ({ ...base, policies: { p: { ...base.policies.p, cost } } });
  const withRouteCost = (cost: unknown) => ({ ...base, routes: [{ ...base.routes[0], cost }] });

  it('negative, fractional and non-number costs, a missing max: SluiceConfigError with the field path', () => {
    const cases: [unknown, string, RegExp][] = [
      [withPolicyCost(-1), 'policies.p.cost', /must be >= 0/],
      [withPolicyCost(1.5), 'policies.p.cost', /whole number of units/],
      [withPolicyCost('2'), 'policies.p.cost', /whole number of units/],
      [withPolicyCost({ header: 'x-cost' }), 'policies.p.cost', /whole number of units|max/],
      [withPolicyCost({ header: 'x-cost', max: 0 }), 'policies.p.cost.max', /must be >= 1/],
      [withPolicyCost({ responseHeader: 'x-tokens', max: 10, reserve: -1 }), 'policies.p.cost.reserve', /must be >= 0/],
      [withRouteCost(-3), 'routes[0].cost', /must be >= 0/],
      [withRouteCost(2.5), 'routes[0].cost', /whole number of units/],
    ];
    for (const [c, field, reason] of cases) {
      let err: unknown;
      try {
        validateConfig(c, {});
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(c)).toBeInstanceOf(SluiceConfigError);
      expect((err as SluiceConfigError).field, JSON.stringify(c)).toBe(field);
      expect((err as SluiceConfigError).reason).toMatch(reason);
    }
  });

  it('a cost above the capacity is refused at startup and by sluice check, for a policy and a route', async () => {
    const policy = await runCli(['check', '--config', writeConfig(withPolicyCost(11), 'cost-policy.yaml')]);
    expect(policy.code).not.toBe(0);
    expect(policy.stderr + policy.stdout).toMatch(/policies\.p\.cost.*exceeds the policy's capacity of 10/);
    const route = await runCli(['check', '--config', writeConfig(withRouteCost(11), 'cost-route.yaml')]);
    expect(route.code).not.toBe(0);
    expect(route.stderr + route.stdout).toMatch(/routes\[0\]\.cost.*exceeds the policy's capacity of 10 units: every request would be refused \(policy "p"\)/);
    await expect(startGateway({ configFile: writeConfig(withRouteCost(11), 'cost-route2.yaml'), logger: quiet, port: 0, env: {} })).rejects.toThrow(/routes\[0\]\.cost/);
  }, 60_000);

  it("a static cost above a tier's capacity (a per-consumer policy) is refused by sluice check and at startup, naming the tier", async () => {
    const tiered = (policyCost: number | undefined, routeCost: number | undefined) => ({
      ...base,
      tiers: { free: { requestsAllowed: 2 }, pro: { policies: { p: { requestsAllowed: 100 } } } },
      policies: { p: { rateLimitBy: 'user', requestsAllowed: 10, timeWindowMinutes: 1, ...(policyCost !== undefined ? { cost: policyCost } : {}) } },
      routes: [{ ...base.routes[0], ...(routeCost !== undefined ? { cost: routeCost } : {}) }],
    });
    const policy = await runCli(['check', '--config', writeConfig(tiered(5, undefined), 'cost-tier.yaml')]);
    expect(policy.code).not.toBe(0);
    expect(policy.stderr + policy.stdout).toMatch(/policies\.p\.cost.*5 exceeds the capacity of 2 units that tier "free" gives policy "p"/);
    await expect(startGateway({ configFile: writeConfig(tiered(undefined, 5), 'cost-tier2.yaml'), logger: quiet, port: 0, env: {} })).rejects.toThrow(/routes\[0\]\.cost.*tier "free"/);
    // Within every tier's capacity: fine.
    const ok = await runCli(['check', '--config', writeConfig(tiered(2, undefined), 'cost-tier3.yaml')]);
    expect(ok.stderr + ok.stdout).toMatch(/OK/);
  }, 60_000);

  it('a cost from the response on a decision-only route (it never sees the response) is refused at startup', async () => {
    const decisionOnly = { ...base, forwardAuth: {}, policies: { p: { ...base.policies.p, cost: { responseHeader: 'x-tokens-used', max: 100 } } }, routes: [{ path: '/x', policies: ['p'] }] };
    await expect(startGateway({ configFile: writeConfig(decisionOnly, 'cost-fa.yaml'), logger: quiet, port: 0, forwardAuthPort: 0, env: {} })).rejects.toThrow(/routes\[0\]\.policies\[0\].*never sees the response/);
    const routeCost = { ...base, forwardAuth: {}, routes: [{ path: '/x', policies: ['p'], cost: { responseHeader: 'x-tokens-used', max: 100 } }] };
    await expect(startGateway({ configFile: writeConfig(routeCost, 'cost-fa2.yaml'), logger: quiet, port: 0, forwardAuthPort: 0, env: {} })).rejects.toThrow(/routes\[0\]\.cost.*never sees the response/);
  });
});
