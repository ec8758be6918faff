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
    const first = a!.fetch('/x/a');
    await new Promise((r) => setTimeout(r, 200)); // a has its 429 (Retry-After: 1 s)
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
});
