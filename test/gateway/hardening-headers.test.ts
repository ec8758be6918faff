/**
 * Spec (issue 10 items 1, 8, 9): what reaches the upstream is what the gateway decided on. Real
 * gateway processes (the CLI) in front of a CGI-style upstream (Python's wsgiref, which reads
 * `X_Sluice_Consumer` and `X-Sluice-Consumer` as the same HTTP_X_SLUICE_CONSUMER) and a Node echo
 * upstream that reports the raw target and header names it received.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, ADMIN_TOKEN, spawnGateway, upstream, writeConfig, type GatewayProcess } from './support.js';

const SECRET = 'jwt-shared-secret-0123456789-abcdefghij';
const KEY = 'acme-key-0123456789abcdef';

let wsgi: { url: string; proc: ChildProcess };
let echo: Awaited<ReturnType<typeof upstream>>;
let gw: GatewayProcess;
let strict: GatewayProcess;

/** Start the Python WSGI upstream; it prints its port. */
function startWsgi(): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn('python3', [join(import.meta.dirname, 'fixtures', 'wsgi-upstream.py')], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    proc.stdout!.once('data', (d: Buffer) => resolve({ url: `http://127.0.0.1:${d.toString().trim()}`, proc }));
    proc.once('exit', (code) => reject(new Error(`wsgi upstream exited with ${code}`)));
  });
}

const config = (extra: Record<string, unknown> = {}) => ({
  server: { ...extra },
  admin: { token: ADMIN_TOKEN },
  upstreams: { wsgi: { url: wsgi.url }, echo: { url: echo.url } },
  policies: { 'per-consumer': { rateLimitBy: 'user', requestsAllowed: 2, timeWindowMinutes: 1 } },
  auth: { apiKey: { header: 'x-api-key' }, jwt: { secret: SECRET } },
  consumers: [{ sub: 'acme', keys: [{ value: KEY }] }],
  routes: [
    { path: '/wsgi/*', upstream: 'wsgi', stripPrefix: '/wsgi' },
    { path: '/public/*', upstream: 'echo', stripPrefix: '/public' },
    { path: '/api/v1/*', upstream: 'echo', stripPrefix: '/api/v1' },
    { path: '/limited/*', upstream: 'echo', policies: ['per-consumer'] },
    { path: '/*', upstream: 'echo' },
  ],
});

beforeAll(async () => {
  wsgi = await startWsgi();
  echo = await upstream((req, res) => {
    const names = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) names.push((req.rawHeaders[i] as string).toLowerCase());
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, names, consumer: req.headers['x-sluice-consumer'] ?? null, tier: req.headers['x-sluice-tier'] ?? null }));
  });
  [gw, strict] = await Promise.all([spawnGateway(writeConfig(config())), spawnGateway(writeConfig(config({ dropUnderscoreHeaders: true })))]);
}, 60_000);
afterAll(async () => {
  await Promise.all([gw?.stop(), strict?.stop()]);
  wsgi?.proc.kill('SIGKILL');
  await echo?.close();
});

const get = async (url: string, headers: Record<string, string> = {}) => {
  const r = await fetch(url, { headers });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

describe('item 1: underscore spellings of gateway-set headers never reach the upstream', () => {
  it('an anonymous client sending X_Sluice_Consumer / X_Sluice_Tier is not "admin" to a WSGI app', async () => {
    const r = await get(`${gw.url}/wsgi/me`, { X_Sluice_Consumer: 'admin', X_Sluice_Tier: 'enterprise', X_Custom: 'kept' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ consumer: null, tier: null, custom: 'kept' });
  });

  it('an authenticated client cannot prepend a forged identity to its own', async () => {
    const r = await get(`${gw.url}/wsgi/me`, { 'x-api-key': KEY, X_Sluice_Consumer: 'admin' });
    expect(r.body).toMatchObject({ consumer: 'acme' });
  });

  it('X_Forwarded_For does not add a forged hop; the forwarded address is the socket', async () => {
    const r = await get(`${gw.url}/wsgi/me`, { X_Forwarded_For: '6.6.6.6' });
    expect(r.body.forwarded_for).toBe('127.0.0.1');
  });

  it('mixed spellings (x-sluice_tier, X_Request_Id) are dropped; other underscore headers pass by default', async () => {
    const r = await get(`${gw.url}/echo`, { 'x-sluice_tier': 'enterprise', X_Request_Id: 'forged', x_forwarded_host: 'evil', 'x_custom': '1' });
    const names = r.body.names as string[];
    expect(names.filter((n) => n.includes('_'))).toEqual(['x_custom']);
    expect(r.body.tier).toBeNull();
  });

  it('server.dropUnderscoreHeaders: true drops every header whose name has an underscore', async () => {
    const r = await get(`${strict.url}/echo`, { x_custom: '1', 'x-plain': '2' });
    const names = r.body.names as string[];
    expect(names.some((n) => n.includes('_'))).toBe(false);
    expect(names).toContain('x-plain');
  });
});

describe('item 8: stripPrefix forwards the path that was matched', () => {
  it.each([
    ['/public/hello', '/hello'],
    ['/%70ublic/hello', '/hello'],
    ['/publi%63/hello', '/hello'],
    ['/p%75blic/admin/users', '/admin/users'],
    ['/%61pi/v1/x', '/x'],
    ['/api/v1/a%20b/c?q=%70&x=1', '/a%20b/c?q=%70&x=1'],
    ['/public/caf%C3%A9', '/caf%C3%A9'],
  ])('%s reaches the upstream as %s', async (path, want) => {
    const r = await get(`${gw.url}${path}`);
    expect(r.status).toBe(200);
    expect(r.body.url).toBe(want);
  });

  it('a route without stripPrefix forwards the raw target unchanged', async () => {
    expect((await get(`${gw.url}/x/%70y;z=1?a=b`)).body.url).toBe('/x/%70y;z=1?a=b');
  });
});

describe('item 9: consumer names outside Latin-1 are percent-encoded, never a 502 after charging', () => {
  it('an admin-created consumer "user-😀" is served (and limited) with an encoded X-Sluice-Consumer', async () => {
    const c = await admin(gw.adminUrl, 'POST', '/consumers', { sub: 'user-😀', issueKey: true });
    expect(c.status).toBe(201);
    const h = { authorization: `Bearer ${c.json.key.key as string}` };
    const a = await get(`${gw.url}/limited/x`, h);
    expect(a.status).toBe(200);
    expect(a.body.consumer).toBe('user-%F0%9F%98%80');
    expect(decodeURIComponent(a.body.consumer as string)).toBe('user-😀');
    const rest = [(await fetch(`${gw.url}/limited/x`, { headers: h })).status, (await fetch(`${gw.url}/limited/x`, { headers: h })).status];
    expect(rest).toEqual([200, 429]);
  });

  it('a JWT with sub "zoë-李" and tier "gölď" (Latin-1 and beyond) reaches the upstream encoded', async () => {
    const token = await new SignJWT({ sub: 'zoë-李', tier: 'gölď' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
    const r = await get(`${gw.url}/echo`, { authorization: `Bearer ${token}` });
    expect(r.status).toBe(200);
    expect(decodeURIComponent(r.body.consumer as string)).toBe('zoë-李');
    expect(decodeURIComponent(r.body.tier as string)).toBe('gölď');
    expect(r.body.consumer).toMatch(/^[\x21-\x7e]+$/);
  });

  it('plain ASCII names are forwarded as they are', async () => {
    expect((await get(`${gw.url}/echo`, { 'x-api-key': KEY })).body.consumer).toBe('acme');
  });
});
