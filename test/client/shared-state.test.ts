/**
 * What clients sharing a store share besides budgets: the 429 pause of a lane and the breaker of a
 * credential. Two clients on one MemoryStore stand for two processes on one RedisStore (the
 * multi-process spec is shared-budget.test.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AuthenticationFailedError, createClient, type Client } from '../../src/client.js';
import { MemoryStore } from '../../src/stores/memory-store.js';
import { startStrictServer, type StrictServer } from './support/strict-server.js';

let server: StrictServer | undefined;
let clients: Client[] = [];
let store: MemoryStore | undefined;
afterEach(async () => {
  for (const c of clients) await c.close();
  await server?.close();
  await store?.close();
  clients = [];
  server = store = undefined;
});
const groups = [{ name: 'api', limit: 1000, windowMs: 1000, match: '/' }];
const password = { grant_type: 'password', username: 'alice', password: 'old-password' };

describe('state shared through the store', () => {
  it("one client's 429 pauses the other client's lane", async () => {
    let n = 0;
    server = await startStrictServer({ groups, headers: 'none', retryAfter: 'seconds', failHook: () => (++n === 1 ? 429 : undefined) });
    store = new MemoryStore();
    const [a, b] = (clients = [0, 1].map(() => createClient({ baseUrl: server!.url, store, keyPrefix: 'shared-pause-test:' })));
    // Wait for a's 429 (Retry-After: 1 s) itself, not a fixed delay: on a loaded machine 200 ms was
    // sometimes not enough for it to arrive, and b then ran ahead of a pause that did not exist yet.
    const throttled = new Promise((r) => a!.on('throttled', r));
    const first = a!.fetch('/x/a');
    await throttled;
    const t = Date.now();
    const res = await b!.fetch('/x/b');
    expect(res.status).toBe(200);
    // b waited for a's pause instead of sending into the penalty.
    expect(Date.now() - t).toBeGreaterThanOrEqual(500);
    expect((await first).status).toBe(200);
    expect(server.requests).toBe(3);
  });

  it("a breaker opened by one client stops the other from asking for tokens; setAuth clears it", async () => {
    server = await startStrictServer({ groups, headers: 'none', requireAuth: true, token: { behaviour: 'invalid_grant' } });
    store = new MemoryStore();
    const auth = { tokenUrl: '/oauth/token', grant: password };
    const [a, b] = (clients = [0, 1].map(() => createClient({ baseUrl: server!.url, store, auth, keyPrefix: 'shared-breaker-test:' })));
    await expect(a!.fetch('/api/1')).rejects.toBeInstanceOf(AuthenticationFailedError);
    await new Promise((r) => setTimeout(r, 20));
    await expect(b!.fetch('/api/2')).rejects.toBeInstanceOf(AuthenticationFailedError);
    expect(server.tokenRequests).toBe(1);
    const s2 = await startStrictServer({ groups, headers: 'none', requireAuth: true });
    await server.close();
    server = s2;
    b!.setAuth({ tokenUrl: `${s2.url}/oauth/token`, grant: { ...password, password: 'new-password' } });
    expect((await b!.fetch(`${s2.url}/api/3`)).status).toBe(200);
  });

  it.each([
    ['answered before its entry expires', 250, 50],
    ['still unanswered when its entry expires', 1150, 50],
  ])('a request slower than the margin (%s) holds its slot until its answer + window: the other client cannot take it when the old entry expires', async (_, arriveMs, answerMs) => {
    // Regression (issue 9 item 4): the slow request's log entry expired at decision + window +
    // margin while the server may have counted it up to its answer; both clients' timers fired at
    // that expiry and the other client's won the slot, one window too early for the server.
    store = new MemoryStore();
    const arrivals: number[] = [];
    let calls = 0;
    // The first request reaches the "server" late and is answered later still (a loaded
    // machine); the others at once.
    const fakeFetch = (async () => {
      const slow = calls++ === 0;
      await new Promise((r) => setTimeout(r, slow ? arriveMs : 1));
      arrivals.push(Date.now());
      await new Promise((r) => setTimeout(r, slow ? answerMs : 1));
      return new Response('{}', { status: 200 });
    }) as typeof fetch;
    const make = () => createClient({ baseUrl: 'http://api.test', store, fetch: fakeFetch, keyPrefix: 'slow-slot-test:', groups: { api: { limit: 1, windowMs: 1000 } }, defaultGroup: 'api' });
    const [a, b] = (clients = [make(), make()]);
    const first = a!.fetch('/x/1');
    await new Promise((r) => setTimeout(r, 50));
    const second = b!.fetch('/x/2');
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect(arrivals).toHaveLength(2);
    // One per 1000 ms as the server counts (by arrival).
    expect(arrivals[1]! - arrivals[0]!).toBeGreaterThanOrEqual(1000);
  });
});
