/**
 * Spec: examples/envoy/ is a working setup to copy. Envoy cannot be installed here, so its config is
 * checked by reading it: the filter's domain exists in Sluice's config, its rate limit cluster is
 * HTTP/2 on the port sluice.yaml serves, and every descriptor its routes produce meets a limit.
 * Then the descriptors Envoy would send for /hello get 5 admissions per minute per client IP.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/gateway/config.js';
import { findLimit, loadRlsConfigs, type RateLimitConfig } from '../../../src/decisions/rls/index.js';
import { headersOf, startTestRls, type TestRls } from './support.js';

const DIR = join(import.meta.dirname, '..', '..', '..', 'examples', 'envoy');
type Y = Record<string, any>;

const envoy = parse(readFileSync(join(DIR, 'envoy.yaml'), 'utf8')) as Y;
const sluice = loadConfig(join(DIR, 'sluice.yaml'));
const hcm = envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config as Y;
const rlFilter = (hcm.http_filters as Y[]).find((f) => f.name === 'envoy.filters.http.ratelimit')?.typed_config as Y;
const routes = hcm.route_config.virtual_hosts[0].routes as Y[];

/** The descriptor entries Envoy builds from one `rate_limits[].actions` list for a client address. */
function descriptorOf(actions: Y[], clientIp: string): { key: string; value: string }[] {
  return actions.map((a) => {
    if (a.generic_key) return { key: a.generic_key.descriptor_key ?? 'generic_key', value: a.generic_key.descriptor_value };
    if (a.remote_address) return { key: 'remote_address', value: clientIp };
    throw new Error(`this test does not model the action ${Object.keys(a)[0]}`);
  });
}

let config: RateLimitConfig;
let rls: TestRls;
beforeAll(async () => {
  config = loadRlsConfigs(sluice.rls!, DIR);
  rls = await startTestRls([], { config });
});
afterAll(async () => {
  await rls?.close();
});

describe('examples/envoy', () => {
  it('sluice.yaml runs the rate limit service alone, on the port Envoy calls, over HTTP/2', () => {
    expect(sluice.routes).toEqual([]);
    const cluster = (envoy.static_resources.clusters as Y[]).find((c) => c.name === rlFilter.rate_limit_service.grpc_service.envoy_grpc.cluster_name) as Y;
    expect(cluster).toBeDefined();
    expect(cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value).toBe(sluice.rls?.port);
    expect(cluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config).toHaveProperty('http2_protocol_options');
    expect(rlFilter.rate_limit_service.transport_api_version).toBe('V3');
  });

  it("the filter's domain is configured, and every descriptor the routes produce meets a limit", () => {
    expect(config.domains.has(rlFilter.domain)).toBe(true);
    const root = config.domains.get(rlFilter.domain)!;
    const produced = routes.flatMap((r) => (r.route.rate_limits as Y[]).map((rl) => descriptorOf(rl.actions, '203.0.113.5')));
    expect(produced.length).toBeGreaterThan(0);
    for (const entries of produced) expect(findLimit(root, entries), JSON.stringify(entries)).toBeDefined();
  });

  it('/hello: 5 requests per minute per client IP, the 6th refused with Retry-After; another IP unaffected', async () => {
    const hello = routes.find((r) => r.match.prefix === '/hello') as Y;
    const request = (ip: string) => ({ domain: rlFilter.domain, descriptors: (hello.route.rate_limits as Y[]).map((rl) => ({ entries: descriptorOf(rl.actions, ip) })) });
    const codes = [];
    for (let i = 0; i < 6; i++) codes.push((await rls.decide(request('198.51.100.1'))).overall_code);
    expect(codes).toEqual(['OK', 'OK', 'OK', 'OK', 'OK', 'OVER_LIMIT']);
    const refused = await rls.decide(request('198.51.100.1'));
    expect(Number(headersOf(refused)['retry-after'])).toBeGreaterThan(0);
    expect((await rls.decide(request('198.51.100.2'))).overall_code).toBe('OK');
  });
});
