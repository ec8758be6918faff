/**
 * Spec: the gateway config. A bad file stops `sluice check` and `sluice serve` with the dotted
 * path of the bad field and the reason; the committed JSON Schema is the one the zod schema
 * generates; the example config is valid.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkConfig } from '../../src/cli/check.js';
import { SluiceConfigError } from '../../src/core/errors.js';
import { configJsonSchema, loadConfig, validateConfig } from '../../src/gateway/config.js';
import { ConsumerRegistry } from '../../src/gateway/consumers.js';
import { compilePolicies } from '../../src/gateway/policies.js';
import { MemoryStore } from '../../src/stores/memory-store.js';
import { ADMIN_TOKEN, ROOT, runCli, writeConfig } from './support.js';

const base = () => ({
  upstreams: { api: { url: 'http://127.0.0.1:3000' } },
  policies: { 'per-minute': { requestsAllowed: 10, timeWindowMinutes: 1 } },
  routes: [{ path: '/v1/*', upstream: 'api', policies: ['per-minute'] }],
});

/** Validate and compile like `sluice check`; return the error's field and message. */
function errorOf(raw: unknown, env: NodeJS.ProcessEnv = {}): { field: string; message: string } {
  try {
    const c = validateConfig(raw, env);
    compilePolicies(c, new ConsumerRegistry({ type: 'memory' }), { store: new MemoryStore(), logger: false });
  } catch (err) {
    expect(err).toBeInstanceOf(SluiceConfigError);
    return { field: (err as SluiceConfigError).field, message: (err as Error).message };
  }
  throw new Error('expected a config error');
}

describe('config validation', () => {
  it('accepts a minimal config and fills the defaults', () => {
    const c = validateConfig(base(), {});
    expect(c.store).toBe('memory');
    expect(c.server.port).toBe(8080);
    expect(c.server.maxHeaderSize).toBe(16_384);
    expect(c.routes[0]?.auth).toBe('optional');
    expect(c.policies['per-minute']?.rateLimitBy).toBe('ip');
    expect(c.upstreams.api?.connections).toBe(128);
  });

  it('a Redis store: degraded-mode defaults (one instance, breaker 5 failures / 0.5 s probe) and onStoreError: local', () => {
    const c = validateConfig({ ...base(), store: { type: 'redis', sentinel: { sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'mymaster' } }, policies: { 'per-minute': { requestsAllowed: 10, timeWindowMinutes: 1, onStoreError: 'local' } } }, {});
    expect(c.store).toMatchObject({ expectedInstances: 1, breaker: { failureThreshold: 5, probeIntervalMs: 500 }, sentinel: { name: 'mymaster' } });
    expect(c.policies['per-minute']?.onStoreError).toBe('local');
  });

  const cases: [string, (c: any) => void, string, RegExp][] = [
    ['unknown upstream in a route', (c) => (c.routes[0].upstream = 'nope'), 'routes[0].upstream', /unknown upstream "nope"/],
    ['unknown policy in a route', (c) => (c.routes[0].policies = ['per-minute', 'typo']), 'routes[0].policies[1]', /unknown policy "typo"/],
    ['negative requestsAllowed', (c) => (c.policies['per-minute'].requestsAllowed = -1), 'policies.per-minute.requestsAllowed', /Too small|>=1/i],
    ['misspelt option', (c) => (c.policies['per-minute'].requestAllowed = 5), 'policies.per-minute', /requestAllowed/],
    ['no window', (c) => delete c.policies['per-minute'].timeWindowMinutes, 'policies.per-minute.timeWindowMinutes', /required/],
    ['both window units', (c) => (c.policies['per-minute'].timeWindowSeconds = 5), 'policies.per-minute.timeWindowSeconds', /either/],
    ['upstream not http', (c) => (c.upstreams.api.url = 'ftp://example.com'), 'upstreams.api.url', /.+/],
    ['route path without slash', (c) => (c.routes[0].path = 'v1'), 'routes[0].path', /must start with/],
    ['admin token too short', (c) => (c.admin = { token: 'short' }), 'admin.token', /at least 16/],
    ['redis store without url or nodes', (c) => (c.store = { type: 'redis' }), 'store', /.+/],
    ['redis store with both url and sentinel', (c) => (c.store = { type: 'redis', url: 'redis://x', sentinel: { sentinels: [{ host: 'a', port: 1 }], name: 'm' } }), 'store', /exactly one of url, nodes or sentinel/],
    ['sentinel without a master name', (c) => (c.store = { type: 'redis', sentinel: { sentinels: [{ host: 'a', port: 1 }] } }), 'store', /.+/],
    ['expectedInstances of 0', (c) => (c.store = { type: 'redis', url: 'redis://x', expectedInstances: 0 }), 'store.expectedInstances', /.+/],
    ['breaker threshold of 0', (c) => (c.store = { type: 'redis', url: 'redis://x', breaker: { failureThreshold: 0 } }), 'store.breaker.failureThreshold', /.+/],
    ['unknown onStoreError', (c) => (c.policies['per-minute'].onStoreError = 'memory'), 'policies.per-minute.onStoreError', /.+/],
    ['consumer with an unknown tier', (c) => (c.consumers = [{ sub: 'a', tier: 'gold' }]), 'consumers[0].tier', /unknown tier "gold"/],
    ['duplicate consumer', (c) => (c.consumers = [{ sub: 'a' }, { sub: 'a' }]), 'consumers[1].sub', /duplicate/],
    ['tier naming an unknown policy', (c) => (c.tiers = { pro: { policies: { nope: { requestsAllowed: 5 } } } }), 'tiers.pro.policies.nope', /unknown policy/],
    ['no routes', (c) => (c.routes = []), 'routes', /at least one route/],
    ['bad key hash', (c) => (c.consumers = [{ sub: 'a', keys: [{ hash: 'abc' }] }]), 'consumers[0].keys[0].hash', /SHA-256/],
    ['stripPrefix not a prefix', (c) => (c.routes[0].stripPrefix = '/v2'), 'routes[0].stripPrefix', /not a prefix/],
  ];
  for (const [what, mutate, field, message] of cases) {
    it(`names the field: ${what}`, () => {
      const c = base();
      mutate(c);
      const e = errorOf(c);
      expect(e.field).toBe(field);
      expect(e.message).toMatch(message);
    });
  }

  it('interpolates ${ENV} and ${ENV:-default}, and names the field of an unset variable', () => {
    const c = { ...base(), admin: { token: '${TOKEN}' }, upstreams: { api: { url: '${UP:-http://127.0.0.1:4000}' } } };
    const ok = validateConfig(c, { TOKEN: ADMIN_TOKEN });
    expect(ok.admin?.token).toBe(ADMIN_TOKEN);
    expect(ok.upstreams.api?.url).toBe('http://127.0.0.1:4000');
    expect(errorOf(c, {})).toMatchObject({ field: 'admin.token', message: expect.stringMatching(/TOKEN is not set/) });
  });

  it('reports YAML syntax errors and unreadable files', () => {
    const f = writeConfig({});
    expect(() => loadConfig(join(f, '..', 'missing.yaml'))).toThrow(/cannot read/);
    const bad = writeConfig({}, 'bad.yaml');
    writeFileSync(bad, 'routes: [\n  - path: /x\n upstream: ]');
    expect(() => loadConfig(bad)).toThrow(/not valid YAML/);
  });

  it('loads JSON files too', () => {
    const f = writeConfig(base(), 'sluice.json');
    expect(loadConfig(f, {}).routes).toHaveLength(1);
  });
});

describe('tier windows are checked by the schema (issue 12)', () => {
  // The one schema refuses them, so validateConfig (the library's gateway entry), `sluice check`
  // and the gateway's startup name the same field, before any policy is compiled.
  const tierCases: [string, object, string, RegExp][] = [
    ['both window units on a tier', { pro: { requestsAllowed: 5, timeWindowMinutes: 1, timeWindowSeconds: 60 } }, 'tiers.pro.timeWindowSeconds', /give either timeWindowMinutes or timeWindowSeconds, not both/],
    ['a tier window over 10 years', { pro: { requestsAllowed: 5, timeWindowMinutes: 1e9 } }, 'tiers.pro.timeWindowMinutes', /between 1 ms and 10 years/],
    ['a per-policy tier window under 1 ms', { pro: { policies: { 'per-minute': { requestsAllowed: 5, timeWindowSeconds: 0.0001 } } } }, 'tiers.pro.policies.per-minute.timeWindowSeconds', /between 1 ms and 10 years/],
    ['both units on a per-policy tier entry', { pro: { policies: { 'per-minute': { requestsAllowed: 5, timeWindowMinutes: 1, timeWindowSeconds: 1 } } } }, 'tiers.pro.policies.per-minute.timeWindowSeconds', /not both/],
  ];
  for (const [what, tiers, field, message] of tierCases) {
    it(`${what}: validateConfig and sluice check name ${field}`, async () => {
      const raw = { ...base(), tiers };
      let err: unknown;
      try {
        validateConfig(raw, {});
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SluiceConfigError);
      expect((err as SluiceConfigError).field).toBe(field);
      expect((err as Error).message).toMatch(message);
      await expect(checkConfig(writeConfig(raw), {})).rejects.toMatchObject({ field, message: expect.stringMatching(message) });
    });
  }

  it('a tier window in range is accepted', () => {
    expect(validateConfig({ ...base(), tiers: { pro: { requestsAllowed: 5, timeWindowSeconds: 1, policies: { 'per-minute': { requestsAllowed: 9, timeWindowMinutes: 2 } } } } }, {}).tiers.pro?.timeWindowSeconds).toBe(1);
  });
});

describe('the committed files', () => {
  it('schema/sluice.schema.json is what the zod schema generates (regenerate: sluice schema > schema/sluice.schema.json)', () => {
    const committed = JSON.parse(readFileSync(join(ROOT, 'schema', 'sluice.schema.json'), 'utf8')) as unknown;
    expect(committed).toEqual(configJsonSchema());
  });

  it('examples/sluice.yaml is valid and compiles', () => {
    const c = loadConfig(join(ROOT, 'examples', 'sluice.yaml'), { SLUICE_ADMIN_TOKEN: ADMIN_TOKEN, DEMO_UPSTREAM_URL: 'http://127.0.0.1:1' });
    const compiled = compilePolicies(c, new ConsumerRegistry({ type: 'memory' }), { store: new MemoryStore(), logger: false });
    expect(compiled.engines.filter(Boolean)).toHaveLength(3);
  });
});

describe('the CLI', () => {
  it('sluice check: exit 0 on a good file, exit 1 with the field path and reason on a bad one', async () => {
    const good = await runCli(['check', '--config', writeConfig(base())]);
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/OK \(1 routes, 1 policies, 1 upstreams\)/);
    const c = base();
    (c.routes[0] as any).upstream = 'nope';
    const bad = await runCli(['check', '--config', writeConfig(c)]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('at routes[0].upstream: unknown upstream "nope"');
  });

  it('sluice serve refuses to start on a bad config (policy option caught at compile time)', async () => {
    const c = base();
    (c.policies['per-minute'] as any).burst = 5;
    (c.policies['per-minute'] as any).algorithm = 'fixed-window';
    const r = await runCli(['serve', '--config', writeConfig(c), '--port', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/at policies\.per-minute\.burst/);
  });
});
