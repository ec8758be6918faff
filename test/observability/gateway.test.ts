/**
 * Observability through the real gateway: two `sluice serve` processes sharing one Redis (limits,
 * consumers, analytics). The counts in /metrics (summed over both), in /analytics (either
 * instance), in the 429 log lines and in `sluice report` equal what the test sent; the dashboard
 * served by a gateway shows them in headless Chromium with a hostile consumer name as text.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, echoUpstream, runCli, spawnGateway, writeConfig, type GatewayProcess } from '../gateway/support.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = randomUUID();
const prefix = `test:obs-gw:${run}:`;
const HOSTILE = '<img src=x onerror=alert(1)>';
const KEYS: Record<string, string> = { alice: 'alice-key-0123456789abcdef', bob: 'bob-key-0123456789abcdef', [HOSTILE]: 'hostile-key-0123456789abcdef' };
const logDir = mkdtempSync(join(tmpdir(), 'sluice-obs-gw-'));
const gateways: GatewayProcess[] = [];
let up: Awaited<ReturnType<typeof echoUpstream>>;
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

function config(log: string) {
  return {
    server: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0, token: ADMIN_TOKEN },
    // Generous store timeout: counts must be exact; a 250 ms timeout fails open on a loaded machine.
    store: { type: 'redis', url: REDIS_URL, prefix, timeoutMs: 5000 },
    upstreams: { echo: { url: up.url } },
    policies: {
      'per-consumer': { rateLimitBy: 'user', requestsAllowed: 10, timeWindowMinutes: 1, algorithm: 'fixed-window' },
      'per-ip': { rateLimitBy: 'ip', requestsAllowed: 6, timeWindowMinutes: 1, algorithm: 'fixed-window' },
    },
    consumers: Object.entries(KEYS).map(([sub, value]) => ({ sub, keys: [{ value }] })),
    routes: [
      { name: 'api', path: '/api/*', stripPrefix: '/api', upstream: 'echo', policies: ['per-consumer'], auth: 'required' },
      { name: 'open', path: '/open', upstream: 'echo', policies: ['per-ip'], auth: 'none' },
    ],
    observability: { logs: { destination: log, sampleRate: 0 }, analytics: { flushIntervalMs: 100 } },
  };
}

beforeAll(async () => {
  up = await echoUpstream();
  for (let i = 0; i < 2; i++) gateways.push(await spawnGateway(writeConfig(config(join(logDir, `gw${i}.log`)))));
}, 60_000);

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await up?.close();
  const r = new Redis(REDIS_URL);
  const keys = await r.keys(`${prefix}*`);
  if (keys.length) await r.del(...keys);
  r.disconnect();
});

function metricSum(texts: string[], series: string): number {
  let sum = 0;
  for (const t of texts) for (const l of t.split('\n')) if (l.startsWith(`${series} `)) sum += Number(l.slice(series.length + 1));
  return sum;
}

/** Poll `cond` every 50 ms until it holds; fail after 10 s. */
async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not reached in 10 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sumDecisions = (texts: string[]) =>
  texts.flatMap((t) => t.split('\n')).filter((l) => l.startsWith('sluice_decisions_total{')).reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);

const get = async (url: string, headers: Record<string, string> = {}) => {
  const r = await fetch(url, { headers });
  await r.arrayBuffer();
  return r.status;
};

describe('observability through two gateway processes on one Redis', () => {
  it('metrics, analytics, 429 log lines and sluice report equal what was sent', async () => {
    const sent = { alice: 25, bob: 8, [HOSTILE]: 13 };
    const jobs: Promise<number>[] = [];
    let i = 0;
    for (const [sub, n] of Object.entries(sent)) for (let k = 0; k < n; k++) jobs.push(get(`${gateways[i++ % 2]!.url}/api/orders`, { 'x-api-key': KEYS[sub]! }));
    for (let k = 0; k < 9; k++) jobs.push(get(`${gateways[k % 2]!.url}/open`));
    const statuses = await Promise.all(jobs);
    // 10 per consumer per minute and 6 per IP, shared through Redis: 15 + 0 + 3 + 3 refused.
    expect(statuses.filter((s) => s === 429)).toHaveLength(21);
    expect(statuses.filter((s) => s === 200)).toHaveLength(55 - 21);

    // Events are recorded when each response ends and analytics flush every 100 ms: poll (bounded).
    const scrape = () => Promise.all(gateways.map((g) => fetch(`${g.adminUrl}/metrics`, { headers: auth }).then((r) => r.text())));
    await until(async () => sumDecisions(await scrape()) === 55);
    for (const g of gateways) await until(async () => (await fetch(`${g.adminUrl}/analytics/summary?window=5m`, { headers: auth }).then((r) => r.json())).total === 55);
    const texts = await scrape();
    expect(metricSum(texts, 'sluice_decisions_total{route="api",policy="per-consumer",outcome="allowed"}')).toBe(10 + 8 + 10);
    expect(metricSum(texts, 'sluice_decisions_total{route="api",policy="per-consumer",outcome="limited"}')).toBe(18);
    expect(metricSum(texts, 'sluice_decisions_total{route="open",policy="per-ip",outcome="limited"}')).toBe(3);
    expect(metricSum(texts, 'sluice_responses_total{route="api",status="200"}')).toBe(28);
    expect(metricSum(texts, 'sluice_responses_total{route="open",status="429"}')).toBe(3);
    expect(texts.every((t) => /outcome="allowed"\} [1-9]/.test(t))).toBe(true); // both served
    // Every request went through a policy, so each one timed its store decision.
    expect(metricSum(texts, 'sluice_store_latency_seconds_count')).toBe(55);

    for (const g of gateways) {
      const s = await fetch(`${g.adminUrl}/analytics/summary?window=5m`, { headers: auth }).then((r) => r.json());
      expect(s.total).toBe(55);
      expect(s.limited).toBe(21);
      expect(s.topConsumers).toEqual([
        { id: 'alice', count: 15 },
        { id: HOSTILE, count: 3 },
        { id: 'ip:127.0.0.1', count: 3 }, // the anonymous caller, attributed to its rate-limit key
      ]);
      expect(s.topIps).toEqual([{ id: '127.0.0.1', count: 21 }]);
      expect(s.endpoints).toEqual([
        { route: 'api', status: 200, count: 28 },
        { route: 'api', status: 429, count: 18 },
        { route: 'open', status: 200, count: 6 },
        { route: 'open', status: 429, count: 3 },
      ]);
    }
    const bob = await fetch(`${gateways[0]!.adminUrl}/analytics/consumers/bob?window=1h`, { headers: auth }).then((r) => r.json());
    expect(bob).toMatchObject({ consumer: 'bob', total: 8, limited: 0, nearLimit: [{ policy: 'per-consumer', usage: 0.8 }] });

    // The 429 log lines of both processes, filtered as docs/observability.md shows.
    const readLogs = () => gateways.flatMap((_, k) => readFileSync(join(logDir, `gw${k}.log`), 'utf8').split('\n').filter(Boolean));
    await until(() => readLogs().filter((l) => l.includes('"status":429')).length >= 21);
    const lines = gateways.flatMap((_, k) => readFileSync(join(logDir, `gw${k}.log`), 'utf8').split('\n').filter(Boolean)).map((l) => JSON.parse(l));
    const refused = lines.filter((o) => o.status === 429);
    expect(refused).toHaveLength(21);
    expect(refused.filter((o) => o.consumer === 'alice')).toHaveLength(15);
    expect(refused.filter((o) => o.consumer === HOSTILE)).toHaveLength(3);
    expect(refused.filter((o) => o.route === 'open' && o.ip === '127.0.0.1' && o.policy === 'per-ip')).toHaveLength(3);
    expect(refused.every((o) => typeof o.requestId === 'string' && o.requestId.length > 0)).toBe(true);
    expect(lines.filter((o) => o.msg === 'near limit').map((o) => o.consumer).sort()).toEqual(
      [HOSTILE, 'alice', 'bob', 'ip:127.0.0.1'].sort(),
    ); // one per consumer+policy across both instances (deduplicated through Redis)

    const report = await runCli(['report', '--admin', gateways[1]!.adminUrl, '--window', '5m'], { SLUICE_ADMIN_TOKEN: ADMIN_TOKEN });
    expect(report.code).toBe(0);
    expect(report.stdout).toMatch(/requests 55 {3}429s 21/);
    expect(report.stdout).toMatch(/alice\s+15/);
  });

  it('keeps the admin side behind the token on the gateway', async () => {
    for (const path of ['/metrics', '/analytics/summary', '/dashboard']) {
      expect((await fetch(`${gateways[0]!.adminUrl}${path}`)).status).toBe(401);
      expect((await fetch(`${gateways[0]!.adminUrl}${path}`, { headers: { authorization: 'Bearer not-the-admin-token' } })).status).toBe(401);
    }
  });

  it("a gateway's dashboard in headless Chromium shows the 429s with the hostile name as text", { timeout: 60_000 }, async () => {
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
      const page = await browser.newPage();
      const dialogs: string[] = [];
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      const res = await page.goto(`${gateways[1]!.adminUrl}/dashboard?token=${ADMIN_TOKEN}`);
      expect(res?.status()).toBe(200);
      await page.waitForFunction(() => document.getElementById('limited')!.textContent === '21');
      const before = Number(await page.textContent('#limited'));
      // Generate more 429s through the other instance and watch them arrive.
      for (let k = 0; k < 4; k++) await get(`${gateways[0]!.url}/api/orders`, { 'x-api-key': KEYS[HOSTILE]! });
      await page.waitForFunction((n) => document.getElementById('limited')!.textContent === String(n), before + 4);
      const top = await page.locator('#top-consumers tr').allTextContents();
      expect(top[0]).toBe('alice15');
      expect(top[1]).toBe(`${HOSTILE}7`);
      expect(await page.locator('img').count()).toBe(0);
      expect(dialogs).toEqual([]);
    } finally {
      await browser?.close();
    }
  });
});
