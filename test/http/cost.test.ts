/**
 * Cost per request (issue 13 item 2): a static cost per policy or route, a cost from a request
 * header, query parameter or function, validated at construction; client input that is not a
 * cost is a 400 naming it, never a cheaper or free request.
 */
import { describe, expect, it } from 'vitest';
import { SluiceConfigError } from '../../src/core/errors.js';
import { createPolicyEngine, type PolicyEngineOptions } from '../../src/http/engine.js';
import type { HttpRequestInfo } from '../../src/http/request.js';
import { MemoryStore } from '../../src/stores/memory-store.js';
import { SwitchableStore } from '../support/switchable-store.js';

const req = (headers: HttpRequestInfo['headers'] = {}, url = '/r'): HttpRequestInfo => ({ method: 'GET', path: '/r', url, headers, remoteAddress: '127.0.0.1' });
const ten = { requestsAllowed: 10, timeWindowMinutes: 1, algorithm: 'fixed-window' as const, headerMode: 'ietf' as const };
const clock = () => 1_800_000_000_000;

/** How many requests `engine` admits in a row (at most `cap`). */
async function admitted(engine: ReturnType<typeof createPolicyEngine>, r: () => HttpRequestInfo, cap = 100): Promise<number> {
  for (let i = 0; i < cap; i++) if ((await engine.check(r())).action === 'deny') return i;
  return cap;
}

function configError(options: PolicyEngineOptions): SluiceConfigError {
  try {
    createPolicyEngine(options);
  } catch (err) {
    expect(err).toBeInstanceOf(SluiceConfigError);
    return err as SluiceConfigError;
  }
  throw new Error(`no error for ${JSON.stringify(options)}`);
}

describe('static cost', () => {
  it('cost: 2 takes two units per request: 5 of a limit of 10, headers count units', async () => {
    const engine = createPolicyEngine({ logger: false, clock, policies: [{ name: 'p', ...ten, cost: 2 }] });
    const first = await engine.check(req());
    expect(first.headers.ratelimit).toMatch(/r=8/);
    expect(await admitted(engine, req)).toBe(4);
  });

  it('cost 0 takes nothing: any number of such requests leave the limit whole', async () => {
    const store = new MemoryStore({ clock });
    // Same policy name on both engines: one counter (as two gateway routes naming one policy).
    const paid = createPolicyEngine({ logger: false, store, clock, policies: [{ name: 'p', ...ten, requestsAllowed: 2 }] });
    const free = createPolicyEngine({ logger: false, store, clock, policies: [{ name: 'p', ...ten, requestsAllowed: 2, cost: 0 }] });
    expect(await admitted(free, req, 50)).toBe(50);
    expect(await admitted(paid, req)).toBe(2);
    // An exhausted key still admits a request that takes nothing (only an overdrawn one refuses it).
    expect((await free.check(req())).action).toBe('allow');
  });

  it("a route's cost applies to its policies without their own; a policy's own cost wins; failed-auth policies keep counting failures", async () => {
    const engine = createPolicyEngine({
      logger: false,
      clock,
      cost: 5,
      policies: [
        { name: 'tokens', ...ten, requestsAllowed: 20 },
        { name: 'spike', ...ten, requestsAllowed: 100, cost: 1 },
        { name: 'auth', failedAuth: { threshold: 3 } },
      ],
    });
    const r = await engine.check(req());
    expect(r.headers['ratelimit']).toContain('"tokens";r=15');
    expect(r.headers['ratelimit']).toContain('"spike";r=99');
    expect(await admitted(engine, req)).toBe(3);
  });

  it('policies of one key with different costs are decided in separate groups, each charged its own cost', async () => {
    const engine = createPolicyEngine({ logger: false, clock, policies: [{ name: 'a', ...ten, cost: 3 }, { name: 'b', ...ten, requestsAllowed: 4 }] });
    expect(await admitted(engine, req)).toBe(3); // a: 3+3+3 = 9 of 10; b: 3 of 4
    const refused = await engine.check(req());
    expect(refused.policy).toBe('a');
  });

  it('bad static costs are configuration errors naming the field', () => {
    const bad: [unknown, string, RegExp][] = [
      [-1, 'p.cost', /integer from 0/],
      [1.5, 'p.cost', /integer from 0/],
      ['2', 'p.cost', /number of units/],
      [Number.NaN, 'p.cost', /integer from 0/],
      [null, 'p.cost', /number of units/],
      [11, 'p.cost', /exceeds the policy's capacity of 10/],
      [{ header: 'x-cost' }, 'p.cost.max', /integer from 1/],
      [{ header: 'x-cost', max: 0 }, 'p.cost.max', /integer from 1/],
      [{ header: 'bad header', max: 5 }, 'p.cost.header', /header name/],
      [{ header: 'x-cost', query: 'c', max: 5 }, 'p.cost', /exactly one/],
      [{ header: 'x-cost', max: 5, reserve: 1 }, 'p.cost.reserve', /unknown option/],
      [{ responseHeader: 'x-t', max: 5, reserve: 6 }, 'p.cost.reserve', /must not exceed max/],
      [{ responseHeader: 'x-t', max: 5, reserve: -1 }, 'p.cost.reserve', /integer from 0/],
    ];
    for (const [cost, field, reason] of bad) {
      const err = configError({ policies: [{ name: 'p', ...ten, cost } as never] });
      expect(err.field, JSON.stringify(cost)).toBe(field);
      expect(err.reason, JSON.stringify(cost)).toMatch(reason);
    }
    expect(configError({ policies: [{ name: 'p', failedAuth: { threshold: 3 }, cost: 2 }] }).field).toBe('p.cost');
    expect(configError({ policies: [{ name: 'p', ...ten, skipFailedRequests: true, cost: { responseHeader: 'x-t', max: 9 } }] }).reason).toMatch(/charged by response already/);
    expect(configError({ policies: [{ name: 'p', ...ten, mode: 'async', cost: { responseHeader: 'x-t', max: 9 } }] }).reason).toMatch(/mode: strict/);
    const route = configError({ cost: 11, policies: [{ name: 'p', ...ten }] });
    expect(route.field).toBe('cost');
    expect(route.reason).toMatch(/capacity of 10 .*policy "p"/);
    expect(configError({ cost: -2, policies: [{ name: 'p', ...ten }] }).field).toBe('cost');
  });
});

describe('cost from the request', () => {
  const byHeader = () => createPolicyEngine({ logger: false, clock, policies: [{ name: 'p', ...ten, requestsAllowed: 100, cost: { header: 'X-Cost', max: 20 } }] });

  it('a header charges its value; a missing header charges max', async () => {
    const engine = byHeader();
    expect((await engine.check(req({ 'x-cost': '7' }))).headers.ratelimit).toMatch(/r=93/);
    expect((await engine.check(req())).headers.ratelimit).toMatch(/r=73/);
    // HTTP optional whitespace around a value is not part of it.
    expect((await engine.check(req({ 'x-cost': ' 3\t' }))).headers.ratelimit).toMatch(/r=70/);
    expect((await engine.check(req({ 'x-cost': '007' }))).headers.ratelimit).toMatch(/r=63/);
  });

  it('hostile header values are a 400 Problem Details naming the header; nothing is counted', async () => {
    const engine = byHeader();
    const hostile: (string | string[])[] = ['', ' ', '0', '-1', '+3', '1e9', '1e1', '0x10', '3.0', '3, 3', '21', '99999999999999999999', '3 3', '٣', 'x'.repeat(10_000), '9'.repeat(10_000), ['3', '3']];
    for (const v of hostile) {
      const r = await engine.check(req({ 'x-cost': v }));
      expect(r.status, JSON.stringify(v).slice(0, 40)).toBe(400);
      expect(r.reason).toBe('invalid-cost');
      expect(r.headers['content-type']).toBe('application/problem+json');
      expect(JSON.parse(r.body as string)).toMatchObject({ status: 400, detail: 'Invalid request cost: header x-cost must be a whole number from 1 to 20', instance: '/r' });
    }
    // Nothing was taken by any of them.
    expect((await engine.check(req({ 'x-cost': '1' }))).headers.ratelimit).toMatch(/r=99/);
  });

  it('a query parameter charges its value; repeated or garbage values are a 400', async () => {
    const engine = createPolicyEngine({ logger: false, clock, policies: [{ name: 'p', ...ten, requestsAllowed: 100, cost: { query: 'units', max: 10 } }] });
    expect((await engine.check(req({}, '/r?units=4'))).headers.ratelimit).toMatch(/r=96/);
    expect((await engine.check(req({}, '/r'))).headers.ratelimit).toMatch(/r=86/);
    for (const q of ['units=4&units=1', 'units=', 'units=-1', 'units=1e3', 'units=11', 'units=%204%20x']) {
      const r = await engine.check(req({}, `/r?${q}`));
      expect(r.status, q).toBe(400);
      expect(JSON.parse(r.body as string).detail).toBe('Invalid request cost: query parameter units must be a whole number from 1 to 10');
    }
  });

  it('a cost function charges what it returns; one that throws or returns a non-integer is an identifier error (onStoreError decides)', async () => {
    const events: string[] = [];
    const engine = createPolicyEngine({
      logger: false,
      clock,
      onEvent: (e) => events.push(e.type),
      policies: [{ name: 'p', ...ten, requestsAllowed: 100, cost: (r: HttpRequestInfo) => (r.headers['x-batch'] === 'bad' ? 1.5 : Number(r.headers['x-batch'] ?? 1) * 2) }],
    });
    expect((await engine.check(req({ 'x-batch': '5' }))).headers.ratelimit).toMatch(/r=90/);
    expect((await engine.check(req({ 'x-batch': 'bad' }))).action).toBe('allow');
    expect(events).toEqual(['identifier-error']);
    const strict = createPolicyEngine({ logger: false, clock, policies: [{ name: 'p', ...ten, onStoreError: 'deny', cost: () => { throw new Error('bug'); } }] });
    expect((await strict.check(req())).status).toBe(503);
  });

  it('a request costing more than the capacity is refused with the one-day Retry-After of a cost that never fits', async () => {
    const engine = createPolicyEngine({ logger: false, clock, policies: [{ name: 'p', ...ten, cost: { header: 'x-cost', max: 50 } }] });
    const r = await engine.check(req({ 'x-cost': '11' }));
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('86400');
    expect((await engine.check(req({ 'x-cost': '10' }))).action).toBe('allow');
  });
});

describe('cost from the response', () => {
  /** A fake clock (epoch ms) the test moves. */
  const fake = () => {
    const c = { now: 1_800_000_000_000, clock: () => c.now };
    return c;
  };
  const headers = (h: Record<string, string>) => (name: string) => h[name];
  // GCRA, 10 units per 10 s: one unit per second, a bucket of 10.
  const tokens = { requestsAllowed: 10, timeWindowSeconds: 10, headerMode: 'ietf' as const };

  it('admits on the reserve, then charges the real cost from the response header; an overdraft refuses with Retry-After until paid back', async () => {
    const t = fake();
    const engine = createPolicyEngine({ logger: false, clock: t.clock, policies: [{ name: 'llm', ...tokens, cost: { responseHeader: 'X-Tokens-Used', max: 1000 } }] });
    expect(engine.needsCompletion).toBe(true);
    const r = await engine.check(req());
    expect(r.action).toBe('allow');
    expect(r.headers.ratelimit).toMatch(/r=9/); // the reserve (1) decided on arrival
    r.complete(200, headers({ 'x-tokens-used': '25' }));
    await Promise.resolve();
    // 25 units charged into a bucket of 10: 15 owed, plus 1 for the next request: 16 s.
    const refused = await engine.check(req());
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('16');
    t.now += 15_000;
    expect((await engine.check(req())).status).toBe(429);
    t.now += 1_000;
    expect((await engine.check(req())).action).toBe('allow');
  });

  it('a missing header charges only the reserve; an unreadable one or one above max charges max; complete() counts once', async () => {
    const t = fake();
    const engine = createPolicyEngine({ logger: false, clock: t.clock, policies: [{ name: 'llm', requestsAllowed: 1000, timeWindowMinutes: 60, algorithm: 'fixed-window', headerMode: 'ietf', cost: { responseHeader: 'x-tokens-used', max: 100, reserve: 2 } }] });
    const left = async () => Number(/r=(\d+)/.exec((await engine.check(req())).headers.ratelimit as string)?.[1]) + 2; // remaining before this request's reserve
    const run = async (h: Record<string, string> | undefined) => {
      const r = await engine.check(req());
      r.complete(200, h === undefined ? undefined : headers(h));
      r.complete(200, headers({ 'x-tokens-used': '100' })); // ignored: only the first call counts
      await Promise.resolve();
    };
    const start = await left(); // this probe itself took its reserve of 2 (no completion)
    expect(start).toBe(1000);
    await run(undefined);
    expect(await left()).toBe(1000 - 2 - 2);
    await run({ 'x-tokens-used': '7' });
    expect(await left()).toBe(996 - 2 - 7);
    await run({ 'x-tokens-used': '1' }); // below the reserve: the reserve is the least a request costs
    expect(await left()).toBe(987 - 2 - 2);
    for (const bad of ['', '-5', '1e3', '0x10', '5, 5', 'lots', '101', '9'.repeat(40)]) {
      const before = await left();
      await run({ 'x-tokens-used': bad });
      expect(await left(), bad).toBe(before - 2 - 100);
    }
  });

  it('a response function charges what it returns; one that throws or returns garbage is charged max', async () => {
    const t = fake();
    const engine = createPolicyEngine({
      logger: false,
      clock: t.clock,
      policies: [{ name: 'gql', requestsAllowed: 1000, timeWindowMinutes: 60, algorithm: 'fixed-window', headerMode: 'ietf', cost: { response: (res, r) => (r.headers['x-mode'] === 'throw' ? (() => { throw new Error('bug'); })() : r.headers['x-mode'] === 'nan' ? Number.NaN : res.status === 200 ? 40 : 0), max: 50, reserve: 0 } }],
    });
    const one = async (mode: string, status: number) => {
      const r = await engine.check(req({ 'x-mode': mode }));
      r.complete(status);
      await Promise.resolve();
    };
    const remaining = async () => Number(/r=(\d+)/.exec((await engine.check(req({ 'x-mode': 'peek' }))).headers.ratelimit as string)?.[1]);
    await one('ok', 200);
    expect(await remaining()).toBe(960);
    await one('ok', 500);
    expect(await remaining()).toBe(960);
    await one('throw', 200);
    expect(await remaining()).toBe(910);
    await one('nan', 200);
    expect(await remaining()).toBe(860);
  });

  it('a cost of 0 (and a reserve of 0) takes nothing, yet is refused while the key is overdrawn', async () => {
    const t = fake();
    const store = new MemoryStore({ clock: t.clock });
    const llm = createPolicyEngine({ logger: false, store, clock: t.clock, policies: [{ name: 'p', ...tokens, cost: { responseHeader: 'x-tokens-used', max: 100, reserve: 0 } }] });
    const status = createPolicyEngine({ logger: false, store, clock: t.clock, policies: [{ name: 'p', ...tokens, cost: 0 }] });
    const r = await llm.check(req());
    expect(r.action).toBe('allow');
    r.complete(200, headers({ 'x-tokens-used': '30' }));
    await Promise.resolve();
    expect((await status.check(req())).status).toBe(429);
    expect((await llm.check(req())).status).toBe(429);
    t.now += 20_000; // 30 charged, 10 in the bucket: paid back after 20 s
    expect((await status.check(req())).action).toBe('allow');
    expect((await llm.check(req())).action).toBe('allow');
  });

  it('overdraft bound: N requests in flight, admitted while budget remained, overdraw by at most admitted x (max - reserve)', async () => {
    for (const [n, reserve, max] of [[30, 1, 5], [50, 2, 9], [12, 1, 1], [40, 3, 3]] as const) {
      const t = fake();
      // One unit per second, a bucket of 10: the debt is readable in seconds of Retry-After.
      const engine = createPolicyEngine({ logger: false, clock: t.clock, policies: [{ name: 'llm', ...tokens, cost: { responseHeader: 'x-tokens-used', max, reserve } }] });
      // Every request is decided before any response arrives.
      const inFlight = await Promise.all(Array.from({ length: n }, () => engine.check(req())));
      const admittedNow = inFlight.filter((r) => r.action === 'allow');
      expect(admittedNow.length, `n=${n} reserve=${reserve}`).toBe(Math.min(n, Math.floor(10 / reserve)));
      for (const r of admittedNow) r.complete(200, headers({ 'x-tokens-used': String(max) }));
      await new Promise((r) => setImmediate(r));
      const charged = admittedNow.length * max;
      const overdraft = charged - 10;
      const bound = admittedNow.length * (max - reserve);
      expect(overdraft).toBeLessThanOrEqual(bound);
      const next = await engine.check(req());
      if (overdraft >= 0) {
        // Owed `overdraft` units at one per second, plus the next request's own reserve.
        expect(next.status).toBe(429);
        expect(Number(next.headers['retry-after'])).toBe(overdraft + reserve);
        t.now += (overdraft + reserve - 1) * 1000;
        expect((await engine.check(req())).status).toBe(429);
        t.now += 1000;
        expect((await engine.check(req())).action).toBe('allow');
      }
    }
  });
});

describe("cost from the response, onStoreError: 'local' over a plain remote store", () => {
  it('while the shared store is down, the rest of the cost is charged locally, as the reserve was decided', async () => {
    const shared = new SwitchableStore();
    const engine = createPolicyEngine({
      store: shared,
      logger: false,
      policies: [{ name: 'llm', requestsAllowed: 10, timeWindowSeconds: 100, onStoreError: 'local', cost: { responseHeader: 'x-tokens-used', max: 1000 } }],
    });
    shared.state = 'down';
    const first = await engine.check(req());
    expect(first.action).toBe('allow');
    first.complete(200, (name) => (name === 'x-tokens-used' ? '25' : undefined));
    await new Promise((r) => setTimeout(r, 10)); // the charge lands in the background
    // 25 units into the local bucket of 10: overdrawn, so the next request is refused.
    const next = await engine.check(req());
    expect(next.status).toBe(429);
    await engine.close();
  });
});
