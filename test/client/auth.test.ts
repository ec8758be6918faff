/** Authentication that cannot loop: single flight, proactive refresh, breaker on invalid_grant. */
import { afterEach, describe, expect, it } from 'vitest';
import { AuthenticationFailedError, AuthenticationUnavailableError, createClient, type Client } from '../../src/client.js';
import { startStrictServer, type StrictServer } from './support/strict-server.js';

let server: StrictServer | undefined;
let client: Client | undefined;
afterEach(async () => {
  await client?.close();
  await server?.close();
  client = undefined;
  server = undefined;
});
const groups = [{ name: 'api', limit: 1000, windowMs: 1000, match: '/api' }];
const password = { grant_type: 'password', username: 'alice', password: 'old-password' };

describe('auth', () => {
  it('invalid_grant: exactly one token request, every queued call fails, later calls fail locally', async () => {
    server = await startStrictServer({ groups, headers: 'none', requireAuth: true, token: { behaviour: 'invalid_grant' } });
    client = createClient({ baseUrl: server.url, auth: { tokenUrl: '/oauth/token', grant: password, clientId: 'app', clientSecret: 's' } });
    const failed: string[] = [];
    client.on('auth-failed', (e) => failed.push(e.credential));
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => client!.fetch(`/api/${i}`)));
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const e = (r as PromiseRejectedResult).reason as AuthenticationFailedError;
      expect(e).toBeInstanceOf(AuthenticationFailedError);
      expect(e.status).toBe(400);
      expect(e.error).toBe('invalid_grant');
      expect(e.credential).toBe('user:alice');
    }
    await expect(client.fetch('/api/later')).rejects.toBeInstanceOf(AuthenticationFailedError);
    expect(server.tokenRequests).toBe(1);
    expect(server.requests).toBe(0);
    expect(failed).toEqual(['user:alice']);
  });

  it('only new credentials close the breaker', async () => {
    server = await startStrictServer({ groups, headers: 'none', requireAuth: true, token: { behaviour: 'invalid_grant' } });
    client = createClient({ baseUrl: server.url, auth: { tokenUrl: '/oauth/token', grant: password } });
    await expect(client.fetch('/api/1')).rejects.toBeInstanceOf(AuthenticationFailedError);
    const s2 = await startStrictServer({ groups, headers: 'none', requireAuth: true });
    await server.close();
    server = s2;
    client.setAuth({ tokenUrl: `${s2.url}/oauth/token`, grant: { ...password, password: 'new-password' } });
    const res = await client.fetch(`${s2.url}/api/2`);
    expect(res.status).toBe(200);
    expect(s2.tokenRequests).toBe(1);
  });

  it('single flight: 30 concurrent calls share one token request', async () => {
    server = await startStrictServer({ groups, headers: 'none', requireAuth: true });
    client = createClient({ baseUrl: server.url, auth: { tokenUrl: '/oauth/token', grant: password } });
    const statuses = await Promise.all(Array.from({ length: 30 }, (_, i) => client!.fetch(`/api/${i}`).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(server.tokenRequests).toBe(1);
    expect(client.tokenRequests).toBe(1);
  });

  it('refreshes before expiry with the refresh token, without a single 401', async () => {
    server = await startStrictServer({ groups, headers: 'none', requireAuth: true, token: { expiresIn: 2 } });
    client = createClient({ baseUrl: server.url, auth: { tokenUrl: '/oauth/token', grant: password, refreshBeforeMs: 1500 } });
    for (let i = 0; i < 8; i++) {
      expect((await client.fetch(`/api/${i}`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(server.unauthorized).toBe(0);
    expect(server.tokenGrants[0]).toBe('password');
    expect(server.tokenGrants.slice(1).length).toBeGreaterThanOrEqual(1);
    expect(server.tokenGrants.slice(1).every((g) => g === 'refresh_token')).toBe(true);
  });
});

describe('auth that cannot loop when the token is granted but refused', () => {
  it('the API answers 401 to every fresh token: one replacement, then the breaker opens', async () => {
    // Access revoked: the token endpoint still issues tokens, the API refuses each of them.
    server = await startStrictServer({ groups, headers: 'none', failHook: (req) => (req.url?.startsWith('/api') ? 401 : undefined) });
    client = createClient({ baseUrl: server.url, auth: { tokenUrl: '/oauth/token', grant: password } });
    const failed: string[] = [];
    client.on('auth-failed', (e) => failed.push(e.credential));
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => client!.fetch(`/api/${i}`)));
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const e = (r as PromiseRejectedResult).reason as AuthenticationFailedError;
      expect(e).toBeInstanceOf(AuthenticationFailedError);
      expect(e.status).toBe(401);
    }
    await expect(client.fetch('/api/later')).rejects.toBeInstanceOf(AuthenticationFailedError);
    // The old client fetched a token per call (21 for 20 calls).
    expect(server.tokenRequests).toBe(2);
    expect(failed).toEqual(['user:alice']);
  });

  it('a token revoked once is replaced, and the replacement keeps working', async () => {
    let n = 0;
    server = await startStrictServer({ groups, headers: 'none', requireAuth: true, failHook: (req) => (req.url === '/api/1' && ++n === 1 ? 401 : undefined) });
    client = createClient({ baseUrl: server.url, auth: { tokenUrl: '/oauth/token', grant: password } });
    expect((await client.fetch('/api/0')).status).toBe(200);
    expect((await client.fetch('/api/1')).status).toBe(200);
    expect((await client.fetch('/api/2')).status).toBe(200);
    expect(server.tokenRequests).toBe(2);
  });

  it('an access_token with CR/LF is refused when received, and no error message contains it', async () => {
    const token = 'abc\r\nX-Injected: 1';
    server = await startStrictServer({ groups, headers: 'none', requireAuth: true, token: { accessToken: token } });
    client = createClient({ baseUrl: server.url, auth: { tokenUrl: '/oauth/token', grant: password } });
    const err = await client.fetch('/api/0').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthenticationUnavailableError);
    expect(String((err as Error).message)).not.toContain('abc');
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toContain('X-Injected');
    expect(server.requests).toBe(0);
  });

  it('a refusal that echoes a secret does not put it in the error message', async () => {
    server = await startStrictServer({ groups, headers: 'none', token: { behaviour: 'invalid_grant' } });
    const grant = { grant_type: 'password', username: 'bob', password: 'hunter2-secret' };
    client = createClient({
      baseUrl: server.url,
      fetch: async (input, init) => {
        if (String(input).endsWith('/oauth/token')) {
          return new Response(JSON.stringify({ error: 'invalid_grant', error_description: 'wrong password hunter2-secret for client s3cr3t-value' }), { status: 400 });
        }
        return fetch(input, init);
      },
      auth: { tokenUrl: '/oauth/token', grant, clientId: 'app', clientSecret: 's3cr3t-value' },
    });
    const err = (await client.fetch('/api/0').catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(AuthenticationFailedError);
    expect(err.message).not.toContain('hunter2-secret');
    expect(err.message).not.toContain('s3cr3t-value');
    expect(err.message).toContain('[redacted]');
  });
});
