/**
 * Spec: the gateway's config, reload, routing and admin API hold under hostile or careless input
 * (issue 10). Each case runs the real CLI (`sluice serve` / `sluice check`) against a loopback
 * upstream:
 * - a refused reload changes nothing: no key granted, none revoked; `check` refuses that file too;
 * - path spellings an upstream serves as one resource take one route (or get 400);
 * - `Object.prototype` names are not definitions; unused policies are validated; errors keep their
 *   full field path; one key cannot belong to two consumers;
 * - admin overrides follow the config's rules; a consumer moves between tiers at runtime;
 * - a Kubernetes-style symlink swap of the config directory reloads the config;
 * - a JSON syntax error names the line and column, never the text around it.
 */
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SluiceConfigError } from '../../src/core/errors.js';
import { validateConfig } from '../../src/gateway/config.js';
import { hashKey } from '../../src/gateway/consumers.js';
import { compileConfig } from '../../src/gateway/state.js';
import { ADMIN_TOKEN, admin, echoUpstream, runCli, spawnGateway, statuses, writeConfig, type GatewayProcess } from './support.js';

let up: Awaited<ReturnType<typeof echoUpstream>>;
const running: GatewayProcess[] = [];
beforeAll(async () => {
  up = await echoUpstream();
});
afterAll(async () => {
  await Promise.all(running.map((g) => g.stop()));
  await up.close();
});
const serve = async (file: string) => {
  const g = await spawnGateway(file);
  running.push(g);
  return g;
};

const ACME1 = 'acme-key-0123456789abcdef';
const ACME2 = 'acme-key2-0123456789abcdef';
const MALLORY = 'mallory-key-0123456789abcdef';

describe('a refused reload', () => {
  const good = () => ({
    admin: { token: ADMIN_TOKEN },
    upstreams: { api: { url: up.url } },
    consumers: [{ sub: 'acme', keys: [{ value: ACME1 }, { value: ACME2 }] }],
    routes: [{ path: '/k/*', upstream: 'api', auth: 'required' }],
  });
  // Drops acme's second key, adds mallory, and has an invalid trustProxy CIDR.
  const bad = () => ({ ...good(), server: { trustProxy: ['10.0.0.0/33'] }, consumers: [{ sub: 'acme', keys: [{ value: ACME1 }] }, { sub: 'mallory', keys: [{ value: MALLORY }] }] });

  it('neither grants nor revokes a key, and `sluice check` refuses the same file', async () => {
    const file = writeConfig(good());
    const g = await serve(file);
    expect(await statuses(`${g.url}/k/a`, 1, { 'x-api-key': ACME2 })).toEqual([200]);
    expect(await statuses(`${g.url}/k/a`, 1, { 'x-api-key': MALLORY })).toEqual([401]);

    writeFileSync(file, stringify(bad()));
    const r = await admin(g.adminUrl, 'POST', '/reload');
    expect(r.status).toBe(409);
    expect(await statuses(`${g.url}/k/a`, 1, { 'x-api-key': ACME2 })).toEqual([200]);
    expect(await statuses(`${g.url}/k/a`, 1, { 'x-api-key': MALLORY })).toEqual([401]);
    expect(g.stderr()).toMatch(/config reload refused.*server\.trustProxy\[0\]/);

    const check = await runCli(['check', '--config', file]);
    expect(check.code).not.toBe(0);
    expect(check.stderr).toMatch(/server\.trustProxy\[0\]/);
  });
});

describe('path variants of a route', () => {
  let g: GatewayProcess;
  beforeAll(async () => {
    g = await serve(
      writeConfig({
        upstreams: { api: { url: up.url } },
        policies: { tight: { requestsAllowed: 2, timeWindowMinutes: 1 }, generic: { requestsAllowed: 1000, timeWindowMinutes: 1 } },
        routes: [
          { path: '/v1/orders', upstream: 'api', policies: ['tight'] },
          { path: '/*', upstream: 'api', policies: ['generic'] },
        ],
      }),
    );
  });

  it('take the route of the canonical path once it is exhausted (case, trailing slash, ;parameters)', async () => {
    expect(await statuses(`${g.url}/v1/orders`, 3)).toEqual([200, 200, 429]);
    for (const p of ['/V1/Orders', '/v1/ORDERS', '/v1/orders/', '/v1/orders;x=1', '/V1/Orders;jsessionid=1/']) {
      expect({ p, s: await statuses(`${g.url}${p}`, 1) }).toEqual({ p, s: [429] });
    }
  });

  it('refuses empty segments (//) with 400 rather than guess what the upstream does with them', async () => {
    for (const p of ['//v1/orders', '/v1//orders']) {
      const res = await fetch(`${g.url}${p}`);
      expect({ p, s: res.status }).toEqual({ p, s: 400 });
      expect(((await res.json()) as { detail: string }).detail).toMatch(/empty-segment/);
    }
  });

  it('forwards the request as it came (normalisation only chooses the route)', async () => {
    const res = await fetch(`${g.url}/Other/Thing/`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { path: string }).path).toBe('/Other/Thing/');
  });

  it('can be made case-sensitive (server.caseSensitivePaths)', async () => {
    const strict = await serve(
      writeConfig({
        server: { caseSensitivePaths: true },
        upstreams: { api: { url: up.url } },
        routes: [{ path: '/v1/orders', upstream: 'api' }],
      }),
    );
    expect(await statuses(`${strict.url}/v1/orders/`, 1)).toEqual([200]);
    expect(await statuses(`${strict.url}/V1/Orders`, 1)).toEqual([404]);
  });
});

describe('validation', () => {
  const base = () => ({
    upstreams: { api: { url: 'http://127.0.0.1:3000' } },
    policies: { used: { requestsAllowed: 10, timeWindowMinutes: 1 } },
    routes: [{ path: '/v1/*', upstream: 'api', policies: ['used'] }],
  });
  /** Everything `sluice check` and `serve` compile; the error's field. */
  const fieldOf = async (raw: unknown): Promise<string> => {
    try {
      await compileConfig(validateConfig(raw, {}));
    } catch (err) {
      expect(err).toBeInstanceOf(SluiceConfigError);
      return (err as SluiceConfigError).field;
    }
    throw new Error('expected a config error');
  };

  const cases: [string, (c: any) => void, string][] = [
    ['an upstream named like an Object.prototype member', (c) => (c.routes[0].upstream = 'constructor'), 'routes[0].upstream'],
    ['a tier named like an Object.prototype member', (c) => (c.consumers = [{ sub: 'a', tier: 'valueOf' }]), 'consumers[0].tier'],
    ['a policy named like an Object.prototype member', (c) => (c.routes[0].policies = ['toString']), 'routes[0].policies[0]'],
    ['an unused per-IP policy with an invalid option', (c) => (c.policies.p = { requestsAllowed: 1, timeWindowMinutes: 1, burst: 3, algorithm: 'fixed-window' }), 'policies.p.burst'],
    ['an unused per-user policy with an invalid option', (c) => (c.policies.p = { rateLimitBy: 'user', requestsAllowed: 1, timeWindowMinutes: 1, burst: 3, algorithm: 'fixed-window' }), 'policies.p.burst'],
    ['a used per-user policy with an invalid option', (c) => ((c.policies.used = { rateLimitBy: 'user', requestsAllowed: 1, timeWindowMinutes: 1, burst: 3, algorithm: 'sliding-window' })), 'policies.used.burst'],
    ['an unused policy without a window', (c) => (c.policies.p = { requestsAllowed: 1 }), 'policies.p.timeWindowMinutes'],
    ['an unused policy with a bad allowList entry', (c) => (c.policies.p = { requestsAllowed: 1, timeWindowMinutes: 1, allowList: ['not-an-ip'] }), 'policies.p.allowList[0]'],
    ['two consumers sharing one key value', (c) => (c.consumers = [{ sub: 'a', keys: [{ value: ACME1 }] }, { sub: 'b', keys: [{ value: ACME1 }] }]), 'consumers[1].keys[0]'],
    ['the same key given as value and as hash', (c) => (c.consumers = [{ sub: 'a', keys: [{ value: ACME1 }] }, { sub: 'b', keys: [{ hash: hashKey(ACME1) }] }]), 'consumers[1].keys[0]'],
    ['an invalid server.trustProxy', (c) => (c.server = { trustProxy: ['not-an-ip'] }), 'server.trustProxy[0]'],
    ['a route path with an empty segment', (c) => (c.routes[0].path = '/v1//*'), 'routes[0].path'],
    ['JWT algorithm "none" or an unknown one', (c) => (c.auth = { jwt: { secret: 'x'.repeat(32), algorithms: ['HS256', 'none'] } }), 'auth.jwt.algorithms[1]'],
    ['a JWT secret with an asymmetric algorithm', (c) => (c.auth = { jwt: { secret: 'x'.repeat(32), algorithms: ['RS256'] } }), 'auth.jwt.algorithms'],
  ];
  for (const [what, mutate, field] of cases) {
    it(`refuses ${what} (${field})`, async () => {
      const c = base();
      mutate(c);
      expect(await fieldOf(c)).toBe(field);
    });
  }

  it('refuses "__proto__" as a name in YAML and JSON files alike', async () => {
    for (const name of ['sluice.yaml', 'sluice.json']) {
      const file = writeConfig(base(), name);
      const text = name.endsWith('.json')
        ? JSON.stringify({ ...base(), tiers: { x: { requestsAllowed: 1 } } }).replace('"x"', '"__proto__"')
        : `${stringify(base())}tiers:\n  __proto__: { requestsAllowed: 1 }\n`;
      writeFileSync(file, text);
      const r = await runCli(['check', '--config', file]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/tiers\.__proto__/);
    }
  });

  it('`sluice check` refuses an upstream named "constructor" that serve would answer 500 for', async () => {
    const c = base();
    c.routes[0]!.upstream = 'constructor';
    const r = await runCli(['check', '--config', writeConfig(c)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/routes\[0\]\.upstream.*unknown upstream "constructor"/);
  });

  it('a JSON syntax error gives the line and column, never the text around it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-json-'));
    const file = join(dir, 'leak.json');
    writeFileSync(file, '{\n  "upstreams": {"api": {"url": "http://127.0.0.1:3000"}},\n  "admin": {"port": 9099, "token": S3cr3t-admin-token-DO-NOT-LOG-0123}\n}\n');
    const r = await runCli(['check', '--config', file]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not valid JSON: syntax error at line 3, column 36/);
    expect(r.stderr).not.toMatch(/S3cr3t|DO-NOT-LOG|token/);
  });
});

describe('the admin API', () => {
  let g: GatewayProcess;
  beforeAll(async () => {
    g = await serve(
      writeConfig({
        admin: { token: ADMIN_TOKEN },
        upstreams: { api: { url: up.url } },
        policies: { 'per-consumer': { rateLimitBy: 'user', requestsAllowed: 3, timeWindowMinutes: 1 } },
        tiers: { free: { requestsAllowed: 2 }, pro: { requestsAllowed: 5 } },
        auth: { apiKey: {} },
        routes: [{ path: '/u/*', upstream: 'api', auth: 'required', policies: ['per-consumer'] }],
      }),
    );
  });

  it('refuses an override window under 1 ms, which would leave the consumer unlimited', async () => {
    await admin(g.adminUrl, 'POST', '/consumers', { sub: 'alice' });
    for (const body of [{ requestsAllowed: 1, timeWindowMinutes: 1e-9 }, { requestsAllowed: 1, timeWindowSeconds: 0.0001 }, { requestsAllowed: 1.5 }, { requestsAllowed: 1, burst: 2 }]) {
      const r = await admin(g.adminUrl, 'PUT', '/consumers/alice/overrides/per-consumer', body);
      expect({ body, status: r.status }).toEqual({ body, status: 400 });
    }
    const ok = await admin(g.adminUrl, 'PUT', '/consumers/alice/overrides/per-consumer', { requestsAllowed: 4, timeWindowSeconds: 30 });
    expect(ok.status).toBe(200);
    expect(ok.json.override).toMatchObject({ requestsAllowed: 4, timeWindowMinutes: 0.5 });
  });

  it('refuses tiers named like Object.prototype members', async () => {
    for (const tier of ['toString', '__proto__', 'constructor']) {
      const r = await admin(g.adminUrl, 'POST', '/consumers', { sub: `t-${tier}`, tier });
      expect({ tier, status: r.status }).toEqual({ tier, status: 400 });
    }
  });

  it('PATCH /consumers/:sub { tier } moves a consumer to another tier at runtime', async () => {
    const created = await admin(g.adminUrl, 'POST', '/consumers', { sub: 'bob', tier: 'free', issueKey: true });
    expect(created.status).toBe(201);
    const key = created.json.key.key as string;
    const carol = await admin(g.adminUrl, 'POST', '/consumers', { sub: 'carol', tier: 'free', issueKey: true });
    // Still on free: 2 per minute.
    expect(await statuses(`${g.url}/u/x`, 3, { 'x-api-key': carol.json.key.key as string })).toEqual([200, 200, 429]);

    const moved = await admin(g.adminUrl, 'PATCH', '/consumers/bob', { tier: 'pro' });
    expect(moved.status).toBe(200);
    expect(moved.json.consumer).toMatchObject({ sub: 'bob', tier: 'pro' });
    expect((await admin(g.adminUrl, 'GET', '/consumers/bob')).json.limits).toEqual([{ policy: 'per-consumer', requestsAllowed: 5, windowMs: 60_000, source: 'tier' }]);
    // Moved to pro before its first request: 5 per minute.
    expect(await statuses(`${g.url}/u/x`, 6, { 'x-api-key': key })).toEqual([200, 200, 200, 200, 200, 429]);

    expect((await admin(g.adminUrl, 'PATCH', '/consumers/bob', { tier: 'gold' })).status).toBe(400);
    expect((await admin(g.adminUrl, 'PATCH', '/consumers/bob', { tier: 'toString' })).status).toBe(400);
    expect((await admin(g.adminUrl, 'PATCH', '/consumers/bob', { sub: 'x' })).status).toBe(400);
    expect((await admin(g.adminUrl, 'PATCH', '/consumers/nobody', { tier: 'pro' })).status).toBe(404);
    expect((await admin(g.adminUrl, 'PATCH', '/consumers/bob', { tier: null })).json.consumer).toEqual({ sub: 'bob', createdAt: expect.any(Number) });
  });
});

describe('reload on file change', () => {
  /** Poll until `path` answers `want` (the watch debounces, then reloads). */
  const eventually = async (url: string, want: number) => {
    let got = 0;
    for (let i = 0; i < 100 && got !== want; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      got = (await statuses(url, 1))[0] as number;
    }
    return got;
  };

  it('reloads a file written in place, and one an editor renames over it', async () => {
    const cfg = (route: string) => stringify({ upstreams: { api: { url: up.url } }, routes: [{ path: route, upstream: 'api' }] });
    const file = writeConfig({ upstreams: { api: { url: up.url } }, routes: [{ path: '/a', upstream: 'api' }] });
    const g = await serve(file);
    writeFileSync(file, cfg('/b'));
    expect(await eventually(`${g.url}/b`, 200)).toBe(200);
    writeFileSync(`${file}.swp`, cfg('/c'));
    renameSync(`${file}.swp`, file);
    expect(await eventually(`${g.url}/c`, 200)).toBe(200);
    expect(await statuses(`${g.url}/b`, 1)).toEqual([404]);
  });

  it('follows a Kubernetes ConfigMap symlink swap (..data renamed onto a new directory)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-cm-'));
    const version = (name: string, route: string) => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'sluice.yaml'), stringify({ upstreams: { api: { url: up.url } }, routes: [{ path: route, upstream: 'api' }] }));
    };
    version('..v1', '/v1');
    symlinkSync('..v1', join(dir, '..data'));
    symlinkSync(join('..data', 'sluice.yaml'), join(dir, 'sluice.yaml'));
    const g = await serve(join(dir, 'sluice.yaml'));
    expect(await statuses(`${g.url}/v1`, 1)).toEqual([200]);

    // What the kubelet does: new directory, a temporary link to it, renamed over ..data.
    version('..v2', '/v2');
    symlinkSync('..v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));

    let got: number[] = [];
    for (let i = 0; i < 100; i++) {
      got = [...(await statuses(`${g.url}/v2`, 1)), ...(await statuses(`${g.url}/v1`, 1))];
      if (got[0] === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(got).toEqual([200, 404]);
    expect(g.stderr()).toMatch(/config reloaded/);
  });
});
