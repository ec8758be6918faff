/**
 * Spec (issue 10 items 4, 7, 11, 12, 16): authentication that cannot be used to slip past limits,
 * and that leaves alone what is not its business. Real gateway processes (the CLI) in front of a
 * loopback upstream that echoes the credentials it received.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, runCli, spawnGateway, statuses, upstream, writeConfig, type GatewayProcess } from './support.js';

const SECRET = 'jwt-shared-secret-0123456789-abcdefghij';
const KEY = 'acme-key-0123456789abcdef';
const CREDENTIAL = 'Bearer sk_live_SECRET_0123456789';

let echo: Awaited<ReturnType<typeof upstream>>;
let gw: GatewayProcess;
let noAuth: GatewayProcess;
let jwksGw: GatewayProcess;
let logFile: string;
let jwks: Server;
let jwksUp = false;
let keys: Awaited<ReturnType<typeof generateKeyPair>>;

const hs = (claims: Record<string, unknown>, exp?: string) => {
  const t = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  return (exp === undefined ? t : t.setExpirationTime(exp)).sign(new TextEncoder().encode(SECRET));
};
const rs = (claims: Record<string, unknown>, key = keys.privateKey) => new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(key);

beforeAll(async () => {
  echo = await upstream((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ authorization: req.headers.authorization ?? null, consumer: req.headers['x-sluice-consumer'] ?? null }));
  });
  keys = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  // A JWKS endpoint that can be taken down: while down it drops every connection.
  jwks = createServer((req, res) => {
    if (!jwksUp) {
      req.socket.destroy();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;

  logFile = join(mkdtempSync(join(tmpdir(), 'sluice-auth-log-')), 'requests.log');
  const main = {
    admin: { token: ADMIN_TOKEN },
    upstreams: { echo: { url: echo.url } },
    policies: {
      'per-ip': { rateLimitBy: 'ip', requestsAllowed: 5, timeWindowMinutes: 1 },
      brute: { rateLimitBy: 'ip', failedAuth: { threshold: 3 } },
      'by-credential': { rateLimitBy: 'header', headerName: 'authorization', requestsAllowed: 1, timeWindowMinutes: 1 },
    },
    auth: { apiKey: { header: 'x-api-key' }, jwt: { secret: SECRET } },
    consumers: [{ sub: 'acme', keys: [{ value: KEY }] }],
    routes: [
      { path: '/login/*', upstream: 'echo', policies: ['brute'], auth: 'required' },
      { path: '/v1/*', upstream: 'echo', policies: ['per-ip'], auth: 'required' },
      { path: '/h/*', upstream: 'echo', policies: ['by-credential'], auth: 'none' },
      { path: '/open/*', upstream: 'echo' },
    ],
    observability: { logs: { destination: logFile, sampleRate: 0 } },
  };
  const bare = { upstreams: { echo: { url: echo.url } }, consumers: [{ sub: 'acme', keys: [{ value: KEY }] }], routes: [{ path: '/*', upstream: 'echo' }] };
  const withJwks = { upstreams: { echo: { url: echo.url } }, auth: { jwt: { jwksUrl, requireExp: false } }, routes: [{ path: '/*', upstream: 'echo' }] };
  [gw, noAuth, jwksGw] = await Promise.all([spawnGateway(writeConfig(main)), spawnGateway(writeConfig(bare)), spawnGateway(writeConfig(withJwks))]);
}, 60_000);
afterAll(async () => {
  await Promise.all([gw?.stop(), noAuth?.stop(), jwksGw?.stop()]);
  await echo?.close();
  jwks?.closeAllConnections();
  await new Promise<void>((r) => (jwks ? jwks.close(() => r()) : r()));
});

/** Lines of the request log (written asynchronously: wait for `n` matching lines). */
async function logLines(match: (l: Record<string, unknown>) => boolean, n: number): Promise<Record<string, unknown>[]> {
  const until = Date.now() + 10_000;
  for (;;) {
    const lines = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : [];
    const hit = lines.filter(match);
    if (hit.length >= n || Date.now() > until) return hit;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const metrics = async () => (await fetch(`${gw.adminUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
const sum = (text: string, re: RegExp) =>
  text
    .split('\n')
    .filter((l) => re.test(l))
    .reduce((a, l) => a + Number(l.split(' ').pop()), 0);

describe("item 4: the gateway's own 401s are charged, penalised, logged and counted as denied", () => {
  it('wrong API keys use up the route limit: 5 x 401, then 429, and then even the valid key waits', async () => {
    const wrong = [];
    for (let i = 0; i < 8; i++) wrong.push(...(await statuses(`${gw.url}/v1/x`, 1, { 'x-api-key': `guess-${i}-0123456789abcdef` })));
    expect(wrong).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    expect(await statuses(`${gw.url}/v1/x`, 1, { 'x-api-key': KEY })).toEqual([429]);
  });

  it('a failedAuth policy counts the 401s: after 3 wrong keys the address is in the penalty box', async () => {
    const got = [];
    for (let i = 0; i < 5; i++) got.push(...(await statuses(`${gw.url}/login/x`, 1, { authorization: `Bearer guess-${i}` })));
    expect(got).toEqual([401, 401, 401, 429, 429]);
    expect(await statuses(`${gw.url}/login/x`, 1, { 'x-api-key': KEY })).toEqual([429]);
  });

  it('refused authentications are logged and counted as denied, on routes with and without policies', async () => {
    expect(await statuses(`${gw.url}/open/x`, 2, { 'x-api-key': 'nobody-0123456789abcdef' })).toEqual([401, 401]);
    const v1 = await logLines((l) => l.route === '/v1/*' && l.status === 401, 5);
    expect(v1).toHaveLength(5);
    expect(v1.every((l) => l.event === 'denied')).toBe(true);
    expect(await logLines((l) => l.route === '/open/*' && l.status === 401, 2)).toHaveLength(2);
    const m = await metrics();
    expect(sum(m, /^sluice_decisions_total\{route="\/v1\/\*".*outcome="denied"\}/)).toBe(5);
    expect(sum(m, /^sluice_decisions_total\{route="\/open\/\*".*outcome="denied"\}/)).toBe(2);
    expect(sum(m, /^sluice_decisions_total\{route="\/(v1|open)\/\*".*outcome="allowed"\}/)).toBe(0);
  });
});

describe('item 16: rateLimitBy: header keeps credentials out of store keys and logs', () => {
  it('the 429 line names a hashed key, and the secret is nowhere in the log', async () => {
    expect(await statuses(`${gw.url}/h/x`, 2, { authorization: CREDENTIAL })).toEqual([200, 429]);
    const [line] = await logLines((l) => l.route === '/h/*' && l.status === 429, 1);
    expect(line?.key).toMatch(/^hdr:[A-Za-z0-9_-]{43}$/);
    expect(readFileSync(logFile, 'utf8')).not.toContain('sk_live_SECRET');
  });
});

describe('item 12: JWTs without exp are refused by default', () => {
  it('no exp: 401; with exp: 200', async () => {
    const noExp = await fetch(`${gw.url}/open/x`, { headers: { authorization: `Bearer ${await hs({ sub: 'zed' })}` } });
    expect(noExp.status).toBe(401);
    expect(((await noExp.json()) as { detail: string }).detail).toMatch(/ERR_JWT_CLAIM_VALIDATION_FAILED/);
    expect(await statuses(`${gw.url}/open/x`, 1, { authorization: `Bearer ${await hs({ sub: 'zed' }, '1h')}` })).toEqual([200]);
  });
});

describe('item 12: an unreachable JWKS is a 503 with a log line, not a 401', () => {
  it('JWKS down: 503 (Retry-After) and "cannot check credentials" logged; JWKS up: the same token passes', async () => {
    jwksUp = false;
    const token = await rs({ sub: 'zed' });
    const down = await fetch(`${jwksGw.url}/x`, { headers: { authorization: `Bearer ${token}` } });
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('5');
    // The log line is written before the answer; give the pipe a moment under load.
    for (let i = 0; i < 100 && !/cannot check credentials/.test(jwksGw.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    expect(jwksGw.stderr()).toMatch(/cannot check credentials/);
    jwksUp = true;
    // requireExp: false relaxes the exp requirement (this token has none).
    expect(await statuses(`${jwksGw.url}/x`, 1, { authorization: `Bearer ${token}` })).toEqual([200]);
    const other = await generateKeyPair('RS256');
    expect(await statuses(`${jwksGw.url}/x`, 1, { authorization: `Bearer ${await rs({ sub: 'zed' }, other.privateKey)}` })).toEqual([401]);
  });
});

describe('item 11: without an auth block, credentials pass through untouched', () => {
  it.each([['Basic dXNlcjpwYXNz'], ['Bearer upstream-own-token'], ['Bearer a.b.c'], ['Negotiate abc==']])('Authorization: %s reaches the upstream as sent', async (h) => {
    const r = await fetch(`${noAuth.url}/x`, { headers: { authorization: h } });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ authorization: h, consumer: null });
  });

  it('a key the gateway issued still identifies its consumer', async () => {
    const r = await fetch(`${noAuth.url}/x`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(await r.json()).toMatchObject({ consumer: 'acme' });
  });
});

describe('item 7: auth: none with a per-consumer onUnidentified: deny policy is a config error', () => {
  it('sluice check and sluice serve refuse it, naming the route', async () => {
    const file = writeConfig({
      upstreams: { echo: { url: 'http://127.0.0.1:1' } },
      policies: { pc: { rateLimitBy: 'user', requestsAllowed: 2, timeWindowMinutes: 1, onUnidentified: 'deny' } },
      routes: [{ path: '/open/*', upstream: 'echo', auth: 'none', policies: ['pc'] }],
    });
    const check = await runCli(['check', '--config', file]);
    expect(check.code).toBe(1);
    expect(check.stderr + check.stdout).toMatch(/routes\[0\]\.auth.*onUnidentified: deny/);
    await expect(spawnGateway(file)).rejects.toThrow(/routes\[0\]\.auth/);
  });
});
