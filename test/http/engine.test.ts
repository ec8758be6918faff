/** The policy engine on its own: validation, multi-policy semantics, async mode. */
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/core/clock.js';
import type { Decision } from '../../src/core/decision.js';
import { SluiceConfigError } from '../../src/core/errors.js';
import type { Rule } from '../../src/core/rule.js';
import type { Store } from '../../src/core/store.js';
import { createPolicyEngine } from '../../src/http/engine.js';
import type { HttpRequestInfo } from '../../src/http/request.js';
import { FallbackStore } from '../../src/stores/fallback-store.js';
import { MemoryStore } from '../../src/stores/memory-store.js';
import { SwitchableStore } from '../support/switchable-store.js';

const req = (over: Partial<HttpRequestInfo> = {}): HttpRequestInfo => ({ method: 'GET', path: '/r', headers: {}, remoteAddress: '127.0.0.1', ...over });

/** A remote-like store: the memory store behind a promise that settles on the next macrotask. */
class SlowStore implements Store {
  constructor(readonly inner: MemoryStore) {}
  decide(key: string, rules: readonly Rule[], cost: number, peek?: boolean): Promise<Decision> {
    return new Promise((resolve) => setTimeout(() => resolve(this.inner.decideSync(key, rules, cost, peek)), 5));
  }
  charge(key: string, rules: readonly Rule[], cost: number): Promise<Decision> {
    return new Promise((resolve) => setTimeout(() => resolve(this.inner.chargeSync(key, rules, cost)), 5));
  }
  reset = (k: string, r: readonly Rule[]) => this.inner.reset(k, r);
  acquire = () => Promise.reject(new Error('unused'));
  release = () => Promise.resolve();
  close = () => Promise.resolve();
}

describe('policy options are validated at construction, naming the option', () => {
  const bad: [object, string][] = [
    [{ requestsAllowed: 1.5, timeWindowMinutes: 1 }, 'p.requestsAllowed'],
    [{ timeWindowMinutes: 1 }, 'p.requestsAllowed'],
    [{ requestsAllowed: 1 }, 'p.timeWindowMinutes'],
    [{ requestsAllowed: 1, timeWindowMinutes: -1 }, 'p.timeWindowMinutes'],
    [{ requestsAllowed: 1, timeWindowMinutes: 1, timeWindowSeconds: 60 }, 'p.timeWindowSeconds'],
    [{ requestsAllowed: 1, timeWindowMinutes: 1, rateLimitBy: 'cookie' }, 'p.rateLimitBy'],
    [{ requestsAllowed: 1, timeWindowMinutes: 1, rateLimitBy: 'header' }, 'p.headerName'],
    [{ requestsAllowed: 1, timeWindowMinutes: 1, rateLimitBy: 'function' }, 'p.identifier'],
    [{ requestsAllowed: 1, timeWindowMinutes: 1, headerMode: 'draft-7' }, 'p.headerMode'],
    [{ requestsAllowed: 1, timeWindowMinutes: 1, trustProxy: true }, 'p.trustProxy'],
    [{ requestsAllowed: 1, timeWindowMinutes: 1, trustProxy: ['10.0.0.0/33'] }, 'p.trustProxy[0]'],
    [{ requestsAllowed: 1, timeWindowMinutes: 1, ipv6Subnet: 0 }, 'p.ipv6Subnet'],
    [{ requestsAllowed: 1, timeWindowMinutes: 1, burst: 2, algorithm: 'fixed-window' }, 'p.burst'],
    [{ requestsAllowed: 1, timeWindowMinutes: 1, requestAllowed: 2 }, 'p.requestAllowed'],
    [{ requestsAllowed: 1, timeWindowMinutes: 1, denyList: ['nope'] }, 'p.denyList[0]'],
    [{ failedAuth: { threshold: 0 } }, 'p.failedAuth.threshold'],
    [{ failedAuth: { threshold: 3, countStatuses: [99] } }, 'p.failedAuth.countStatuses'],
    [{ failedAuth: { threshold: 3 }, requestsAllowed: 3 }, 'p.requestsAllowed'],
  ];
  it.each(bad)('%j -> %s', (options, field) => {
    let err: unknown;
    try {
      createPolicyEngine({ policies: [{ name: 'p', ...options }] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SluiceConfigError);
    expect((err as SluiceConfigError).field).toBe(field);
  });
  it('rejects duplicate names and a pool used twice on one route', () => {
    const p = { requestsAllowed: 1, timeWindowMinutes: 1 };
    expect(() => createPolicyEngine({ policies: [{ name: 'a', ...p }, { name: 'a', ...p }] })).toThrow(/duplicate policy name/);
    expect(() => createPolicyEngine({ policies: [{ name: 'a', pool: 'x', ...p }, { name: 'b', pool: 'x', ...p }] })).toThrow(/already used/);
  });
});

describe('several policies with different keys', () => {
  it('a request refused by one policy consumes from none', async () => {
    const store = new MemoryStore();
    const e = createPolicyEngine({
      store,
      logger: false,
      policies: [
        { name: 'per-user', rateLimitBy: 'user', requestsAllowed: 10, timeWindowMinutes: 60, headerMode: 'ietf', algorithm: 'fixed-window' },
        { name: 'per-ip', rateLimitBy: 'ip', requestsAllowed: 1, timeWindowMinutes: 60, headerMode: 'ietf', algorithm: 'fixed-window' },
      ],
    });
    const r1 = await e.check(req({ user: { sub: 'u' } }));
    expect(r1.action).toBe('allow');
    for (let i = 0; i < 5; i++) {
      const r = await e.check(req({ user: { sub: 'u' } }));
      expect(r.action).toBe('deny');
      expect(r.policy).toBe('per-ip');
      expect(r.headers['ratelimit']).toMatch(/^"per-user";r=9;t=\d+, "per-ip";r=0;t=\d+$/);
    }
    // The user's hourly budget was charged once only: from another address, 9 remain.
    const other = await e.check(req({ user: { sub: 'u' }, remoteAddress: '10.0.0.2' }));
    expect(other.headers['ratelimit']).toMatch(/^"per-user";r=8;/);
  });
});

describe('async mode over a remote store', () => {
  it('lets requests through while counting, then refuses the key locally until its retry time', async () => {
    const clock = manualClock();
    const e = createPolicyEngine({ store: new SlowStore(new MemoryStore({ clock })), clock, logger: false, policies: [{ name: 'a', mode: 'async', requestsAllowed: 3, timeWindowMinutes: 1, algorithm: 'fixed-window' }] });
    // A burst of 6 concurrent requests: none waits for the store, so all pass (the documented over-admission).
    const burst = await Promise.all(Array.from({ length: 6 }, () => e.check(req())));
    expect(burst.map((r) => r.action)).toEqual(Array(6).fill('allow'));
    await new Promise((r) => setTimeout(r, 30)); // background decisions land
    const r = await e.check(req());
    expect(r.action).toBe('deny');
    expect(r.status).toBe(429);
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    clock.advance(61_000);
    expect((await e.check(req())).action).toBe('allow');
  });
});

describe('every refusal writes the headers of its headerMode through the one writer', () => {
  // Regression: the penalty and the async-mode refusals wrote Retry-After inline and never the
  // IETF RateLimit or legacy X-RateLimit fields, even with headerMode ietf / legacy.
  it('async mode: a locally blocked key gets RateLimit fields with r=0 and t = its Retry-After', async () => {
    const clock = manualClock();
    const e = createPolicyEngine({ store: new SlowStore(new MemoryStore({ clock })), clock, logger: false, policies: [{ name: 'a', mode: 'async', requestsAllowed: 2, timeWindowMinutes: 1, algorithm: 'fixed-window', headerMode: 'ietf' }] });
    await Promise.all(Array.from({ length: 3 }, () => e.check(req())));
    await new Promise((r) => setTimeout(r, 30)); // background decisions land
    const r = await e.check(req());
    expect(r.reason).toBe('rate-limited');
    const retry = Number(r.headers['retry-after']);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(r.headers['ratelimit-policy']).toBe('"a";q=2;w=60');
    expect(r.headers['ratelimit']).toBe(`"a";r=0;t=${retry}`);
  });

  it('async mode with legacy headers: X-RateLimit-Remaining 0 on the local refusal', async () => {
    const clock = manualClock();
    const e = createPolicyEngine({ store: new SlowStore(new MemoryStore({ clock })), clock, logger: false, policies: [{ name: 'a', mode: 'async', requestsAllowed: 1, timeWindowMinutes: 1, algorithm: 'fixed-window', headerMode: 'legacy' }] });
    await Promise.all(Array.from({ length: 2 }, () => e.check(req())));
    await new Promise((r) => setTimeout(r, 30));
    const r = await e.check(req());
    expect(r.action).toBe('deny');
    expect(r.headers['x-ratelimit-limit']).toBe('1');
    expect(r.headers['x-ratelimit-remaining']).toBe('0');
    expect(Number(r.headers['x-ratelimit-reset'])).toBeGreaterThan(clock() / 1000);
  });

  it('failed-auth penalty: the refusal carries RateLimit fields (r=0, t = Retry-After) like any 429', async () => {
    const clock = manualClock();
    const e = createPolicyEngine({ clock, logger: false, policies: [{ name: 'login', failedAuth: { threshold: 2, penaltySeconds: 30 }, headerMode: 'ietf' }] });
    for (let i = 0; i < 2; i++) (await e.check(req())).complete(401);
    await new Promise((r) => setTimeout(r, 10)); // the failures are recorded in the background
    const r = await e.check(req());
    expect(r.reason).toBe('penalty');
    expect(r.headers['retry-after']).toBe('30');
    expect(r.headers['ratelimit']).toBe('"login";r=0;t=30');
    expect(r.headers['ratelimit-policy']).toMatch(/^"login";q=2;w=30$/);
  });
});

describe("onStoreError: 'local' (the shared store fails)", () => {
  const local = { name: 'p', requestsAllowed: 3, timeWindowMinutes: 1, onStoreError: 'local' as const };

  it('over a plain store: the engine enforces the policy from memory while the store is down, and only that policy', async () => {
    const shared = new SwitchableStore();
    const logged: string[] = [];
    const e = createPolicyEngine({
      store: shared,
      logger: { warn: (_o, msg) => logged.push(msg) },
      policies: [local],
    });
    const open = createPolicyEngine({ store: shared, logger: false, policies: [{ ...local, onStoreError: 'allow' }] });
    shared.state = 'down';
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await e.check(req()));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 429, 429]);
    expect(results[3]?.reason).toBe('rate-limited');
    // The switch is logged once, not per request.
    expect(logged.filter((m) => /deciding from local memory/.test(m))).toHaveLength(1);
    // A policy saying 'allow' on the same store still fails open.
    for (let i = 0; i < 5; i++) expect((await open.check(req())).status).toBe(200);
    await e.close();
    await open.close();
    expect(shared.closed).toBe(false); // the caller's store is the caller's
  });

  it('over a FallbackStore: its share applies (limit / expectedInstances)', async () => {
    const shared = new SwitchableStore();
    const store = new FallbackStore({ store: shared, onStoreError: 'error', expectedInstances: 3 });
    const e = createPolicyEngine({ store, logger: false, policies: [{ ...local, requestsAllowed: 9 }] });
    shared.state = 'down';
    let ok = 0;
    for (let i = 0; i < 10; i++) if ((await e.check(req())).action === 'allow') ok++;
    expect(ok).toBe(3);
    await store.close();
  });

  it("'local' is accepted by validation; throwOnFailure contradicts it", () => {
    expect(() => createPolicyEngine({ policies: [local] })).not.toThrow();
    expect(() => createPolicyEngine({ policies: [{ ...local, throwOnFailure: true }] })).toThrow(/p\.throwOnFailure.*contradicts onStoreError: "local"/);
  });
});
