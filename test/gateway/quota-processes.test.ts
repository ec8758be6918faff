/**
 * Spec: a quota is exact across gateway processes sharing one Redis: two `sluice serve` processes
 * (spawned through the real CLI), requests fired at both at once, never more admitted than the
 * allowance; either instance's admin API reports the same usage.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, ADMIN_TOKEN, echoUpstream, spawnGateway, writeConfig, type GatewayProcess } from './support.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `sluice-quota-test-${randomBytes(4).toString('hex')}:`;
const ALLOWANCE = 40;

let up: Awaited<ReturnType<typeof echoUpstream>>;
let a: GatewayProcess;
let b: GatewayProcess;

beforeAll(async () => {
  up = await echoUpstream();
  const file = writeConfig({
    admin: { token: ADMIN_TOKEN },
    // A generous timeout: this spec is about exactness, not fail-open under a loaded machine.
    store: { type: 'redis', url: REDIS_URL, prefix, timeoutMs: 5000 },
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
  [a, b] = await Promise.all([spawnGateway(file), spawnGateway(file)]);
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await up?.close();
  const r = new Redis(REDIS_URL);
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `*${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await r.del(...keys);
  } while (cursor !== '0');
  r.disconnect();
});

/** Fire `n` requests at each gateway at once; the statuses. */
async function burst(path: string, n: number, headers: Record<string, string> = {}): Promise<number[]> {
  const one = async (base: string) => {
    const r = await fetch(`${base}${path}`, { headers });
    await r.arrayBuffer();
    return r.status;
  };
  return Promise.all([...Array.from({ length: n }, () => one(a.url)), ...Array.from({ length: n }, () => one(b.url))]);
}

describe('a quota shared by two gateway processes on one Redis', () => {
  it('a calendar monthly quota by user: exactly the allowance is admitted, the rest is 429', async () => {
    const codes = await burst('/api/x', 50, { 'x-api-key': 'app-key-0123456789abcdef' });
    expect(codes.filter((c) => c === 200)).toHaveLength(ALLOWANCE);
    expect(codes.filter((c) => c === 429)).toHaveLength(100 - ALLOWANCE);
    for (const gw of [a, b]) {
      const u = await admin(gw.adminUrl, 'GET', '/consumers/app/usage');
      expect(u.json.usage).toEqual([expect.objectContaining({ policy: 'monthly', kind: 'quota', allowance: ALLOWANCE, used: ALLOWANCE, remaining: 0 })]);
    }
  });

  it('a first-api-call daily quota by IP: the anchor is set once for both processes, exactly the allowance is admitted', async () => {
    const codes = await burst('/open/x', 50);
    expect(codes.filter((c) => c === 200)).toHaveLength(ALLOWANCE);
  });
});
