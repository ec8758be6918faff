/**
 * Spec: examples/monetised-api/sluice.yaml does what its comments say, run through the real CLI:
 * the free plan's LLM quota runs out with "Quota exhausted", the pro tier's allowances apply, and
 * a consumer's billing anchor sets its period; the LLM route charges the tokens the (demo) LLM
 * upstream reports against a daily token budget per tier.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoUpstream } from '../../src/gateway/demo-upstream.js';
import { admin, echoUpstream, ROOT, spawnGateway, type GatewayProcess } from './support.js';

const TOKEN = 'example-admin-token-0123456789';
let up: Awaited<ReturnType<typeof echoUpstream>>;
/** The demo upstream run.sh starts: its /v1/completions reports x-tokens-used. */
let llm: Awaited<ReturnType<typeof startDemoUpstream>>;
let gw: GatewayProcess;

beforeAll(async () => {
  up = await echoUpstream();
  llm = await startDemoUpstream(0);
  gw = await spawnGateway(join(ROOT, 'examples', 'monetised-api', 'sluice.yaml'), { SLUICE_ADMIN_TOKEN: TOKEN, DEMO_UPSTREAM_URL: up.url, DEMO_LLM_URL: llm.url });
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await up?.close();
  await llm?.close();
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

  it('LLM tokens: a completion is charged the x-tokens-used the upstream reports; a free consumer that overdraws its 2 000 a day waits for tomorrow, a pro one does not', async () => {
    // A free consumer signed up at runtime (hobbyist's LLM quota is used up above).
    const made = await admin(gw.adminUrl, 'POST', '/consumers', { sub: 'writer', tier: 'free', issueKey: true }, TOKEN);
    expect(made.status).toBe(201);
    const key = made.json.key.key as string;
    const complete = async (k: string, prompt: string) => {
      const r = await fetch(`${gw.url}/v1/completions`, { method: 'POST', headers: { 'x-api-key': k }, body: prompt });
      return { status: r.status, tokens: r.headers.get('x-tokens-used'), ratelimit: r.headers.get('ratelimit'), body: await r.text() };
    };
    const small = await complete(key, 'Say hello');
    expect(small.status).toBe(200);
    expect(small.tokens).toBe('23'); // 20 + 9 characters / 4
    expect(small.ratelimit).toContain('"llm-tokens";r=1999'); // the reserve, decided on arrival
    // 8 000 characters: 2 020 tokens, more than the 1 977 left: admitted (budget remained), then charged.
    const big = await complete(key, 'x'.repeat(8000));
    expect(big.status).toBe(200);
    expect(big.tokens).toBe('2020');
    let refused: { status: number; body: string } | undefined;
    for (let i = 0; i < 50 && refused === undefined; i++) {
      const r = await complete(key, 'again');
      if (r.status === 429) refused = r;
      else await new Promise((res) => setTimeout(res, 20));
    }
    expect(refused?.status).toBe(429);
    expect(JSON.parse(refused?.body as string).detail).toMatch(/^Quota exhausted: the daily allowance of 2000 units for "llm-tokens" is used up; it renews at /);
    // The pro tier's 200 000 tokens a day take the same prompt in their stride.
    const pro = await complete('demo-key-pro-0123456789', 'x'.repeat(8000));
    expect(pro.status).toBe(200);
    expect(pro.ratelimit).toContain('"llm-tokens";r=199999');
  });
});
