/**
 * Spec: examples/monetised-api/sluice.yaml does what its comments say, run through the real CLI:
 * the free plan's LLM quota runs out with "Quota exhausted", the pro tier's allowances apply, and
 * a consumer's billing anchor sets its period.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, echoUpstream, ROOT, spawnGateway, type GatewayProcess } from './support.js';

const TOKEN = 'example-admin-token-0123456789';
let up: Awaited<ReturnType<typeof echoUpstream>>;
let gw: GatewayProcess;

beforeAll(async () => {
  up = await echoUpstream();
  gw = await spawnGateway(join(ROOT, 'examples', 'monetised-api', 'sluice.yaml'), { SLUICE_ADMIN_TOKEN: TOKEN, DEMO_UPSTREAM_URL: up.url });
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await up?.close();
});

const call = async (path: string, key: string) => {
  const r = await fetch(`${gw.url}${path}`, { headers: { 'x-api-key': key } });
  return { status: r.status, body: await r.text() };
};

describe('examples/monetised-api', () => {
  it('free plan: 20 LLM calls a month, then 429 "Quota exhausted"; its usage on the admin API', async () => {
    for (let i = 0; i < 20; i++) {
      expect((await call('/v1/completions', 'demo-key-free-0123456789')).status).toBe(200);
      // Stay under the 10/s spike guard: this spec is about the quota.
      await new Promise((r) => setTimeout(r, 110));
    }
    const refused = await call('/v1/completions', 'demo-key-free-0123456789');
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).detail).toMatch(/^Quota exhausted: the monthly allowance of 20 requests for "llm-monthly" is used up; it renews at \d{4}-\d{2}-01T00:00:00.000Z$/);
    const u = await admin(gw.adminUrl, 'GET', '/consumers/hobbyist/usage', undefined, TOKEN);
    const rows = Object.fromEntries((u.json.usage as { policy: string; used: number; allowance: number }[]).map((r) => [r.policy, r]));
    expect(rows['llm-monthly']).toMatchObject({ used: 20, allowance: 20 });
    expect(rows.monthly).toMatchObject({ used: 20, allowance: 100 });
  });

  it("pro plan: the tier's allowances, counted from acme's billing anchor (the 15th)", async () => {
    expect((await call('/v1/orders', 'demo-key-pro-0123456789')).status).toBe(200);
    const u = await admin(gw.adminUrl, 'GET', '/consumers/acme/usage', undefined, TOKEN);
    const monthly = (u.json.usage as { policy: string; allowance: number; used: number; resetsAt: string }[]).find((r) => r.policy === 'monthly');
    expect(monthly).toMatchObject({ allowance: 100_000, used: 1 });
    expect(monthly?.resetsAt).toMatch(/^\d{4}-\d{2}-15T00:00:00.000Z$/);
    expect(u.json.billingAnchor).toBe('2026-01-15T00:00:00.000Z');
  });
});
