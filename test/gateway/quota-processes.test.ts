/**
 * Spec: a quota is exact across gateway processes sharing one Redis: two `sluice serve` processes
 * (spawned through the real CLI), requests fired at both at once, never more admitted than the
 * allowance; either instance's admin API reports the same usage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fireAtAll, gatewaysOnRedis } from '../support/gateways-on-redis.js';
import { admin, ADMIN_TOKEN, echoUpstream, writeConfig, type GatewayProcess } from './support.js';

const redis = gatewaysOnRedis('quota-test');
const ALLOWANCE = 40;

let up: Awaited<ReturnType<typeof echoUpstream>>;
let a: GatewayProcess;
let b: GatewayProcess;

beforeAll(async () => {
  up = await echoUpstream();
  const file = writeConfig({
    admin: { token: ADMIN_TOKEN },
    store: redis.store,
    upstreams: { api: { url: up.url } },
    policies: {
      monthly: { quotaBy: 'user', period: 'monthly', allowances: { requests: ALLOWANCE }, quotaAnchorMode: 'calendar' },
      daily: { quotaBy: 'ip', period: 'daily', allowances: { requests: ALLOWANCE } },
    },
    auth: { apiKey: { header: 'x-api-key' } },
    consumers: [{ sub: 'app', keys: [{ value: 'app-key-0123456789abcdef' }] }],
    routes: [
      { path: '/api/*', upstream: 'api', policies: ['monthly'], auth: 'required' },
      { path: '/open/*', upstream: 'api', policies: ['daily'] },
    ],
  });
  [a, b] = (await redis.spawn(file)) as [GatewayProcess, GatewayProcess];
}, 60_000);

afterAll(async () => {
  await redis.close();
  await up?.close();
});

describe('a quota shared by two gateway processes on one Redis', () => {
  it('a calendar monthly quota by user: exactly the allowance is admitted, the rest is 429', async () => {
    const codes = await fireAtAll([a, b], '/api/x', 50, { 'x-api-key': 'app-key-0123456789abcdef' });
    expect(codes.filter((c) => c === 200)).toHaveLength(ALLOWANCE);
    expect(codes.filter((c) => c === 429)).toHaveLength(100 - ALLOWANCE);
    for (const gw of [a, b]) {
      const u = await admin(gw.adminUrl, 'GET', '/consumers/app/usage');
      expect(u.json.usage).toEqual([expect.objectContaining({ policy: 'monthly', kind: 'quota', allowance: ALLOWANCE, used: ALLOWANCE, remaining: 0 })]);
    }
  });

  it('a first-api-call daily quota by IP: the anchor is set once for both processes, exactly the allowance is admitted', async () => {
    const codes = await fireAtAll([a, b], '/open/x', 50);
    expect(codes.filter((c) => c === 200)).toHaveLength(ALLOWANCE);
  });
});
