/**
 * Spec (issue 10 items 2, 5): failures around the request path stay visible and never take the
 * gateway down. Real gateway processes (the CLI), a loopback upstream, `/dev/full` standing in for
 * a full log disk, and a throw-away redis-server killed mid-run.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/free-port.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { ADMIN_TOKEN, echoUpstream, runCli, spawnGateway, writeConfig, type GatewayProcess } from './support.js';

let echo: Awaited<ReturnType<typeof echoUpstream>>;
beforeAll(async () => {
  echo = await echoUpstream();
});
afterAll(async () => {
  await echo?.close();
});

const metrics = async (g: GatewayProcess) => (await fetch(`${g.adminUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
const sum = (text: string, re: RegExp) =>
  text
    .split('\n')
    .filter((l) => re.test(l))
    .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
/** Status of one GET, or 0 when no answer came within 10 s (a wedged gateway). */
const status = async (url: string) => {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    await r.arrayBuffer();
    return r.status;
  } catch {
    return 0;
  }
};

describe('item 2: a log destination that cannot be written never wedges the gateway', () => {
  let gw: GatewayProcess;
  afterAll(async () => {
    if (gw?.proc.exitCode === null) gw.proc.kill('SIGKILL');
  });

  it('on a full disk (/dev/full) every request is answered, failed writes are counted, SIGTERM exits', async () => {
    gw = await spawnGateway(
      writeConfig({
        admin: { token: ADMIN_TOKEN },
        upstreams: { api: { url: echo.url } },
        policies: { p: { requestsAllowed: 1, timeWindowMinutes: 1 } },
        routes: [{ path: '/x', upstream: 'api', policies: ['p'] }],
        observability: { logs: { destination: '/dev/full' } },
      }),
    );
    const got = [];
    for (let i = 0; i < 5; i++) got.push(await status(`${gw.url}/x`));
    expect(got).toEqual([200, 429, 429, 429, 429]);
    // Writes are asynchronous: the last lines may still be in flight when the answer arrives.
    let m = await metrics(gw);
    for (let i = 0; i < 100 && sum(m, /^sluice_log_lines_dropped_total /) < 4; i++) {
      await new Promise((r) => setTimeout(r, 50));
      m = await metrics(gw);
    }
    expect(sum(m, /^sluice_log_write_errors_total /)).toBeGreaterThanOrEqual(1);
    expect(sum(m, /^sluice_log_lines_dropped_total /)).toBeGreaterThanOrEqual(4);
    const code = await Promise.race([gw.stop('SIGTERM'), new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    expect(code).toBe(0);
  }, 60_000);

  it('a destination in a missing directory is a config error in sluice check and at startup', async () => {
    const file = writeConfig({
      upstreams: { api: { url: echo.url } },
      routes: [{ path: '/x', upstream: 'api' }],
      observability: { logs: { destination: '/nonexistent-sluice-dir/sluice.log' } },
    });
    const check = await runCli(['check', '--config', file]);
    expect(check.code).toBe(1);
    expect(check.stderr + check.stdout).toMatch(/observability\.logs\.destination.*does not exist/);
    await expect(spawnGateway(file)).rejects.toThrow(/observability\.logs\.destination/);
  }, 60_000);
});

describe('item 5: store errors under onStoreError: allow are logged (rate-limited) and counted', () => {
  let redis: RedisServer;
  let gw: GatewayProcess;
  let logFile: string;
  beforeAll(async () => {
    redis = await startRedis(await freePort());
    logFile = join(mkdtempSync(join(tmpdir(), 'sluice-store-log-')), 'requests.log');
    gw = await spawnGateway(
      writeConfig({
        admin: { token: ADMIN_TOKEN },
        store: { type: 'redis', url: redis.url, prefix: `gwa-hardening-${process.pid}:` },
        upstreams: { api: { url: echo.url } },
        policies: { open: { requestsAllowed: 100, timeWindowMinutes: 1 }, closed: { requestsAllowed: 100, timeWindowMinutes: 1, onStoreError: 'deny' } },
        routes: [
          { path: '/open/*', upstream: 'api', policies: ['open'] },
          { path: '/closed/*', upstream: 'api', policies: ['closed'] },
        ],
        observability: { logs: { destination: logFile, sampleRate: 0 } },
      }),
    );
  }, 60_000);
  afterAll(async () => {
    await gw?.stop('SIGKILL');
    await redis?.stop();
  });

  it('Redis killed: allow routes pass and deny routes 503, but both count as store errors and are logged once', async () => {
    expect(await status(`${gw.url}/open/x`)).toBe(200);
    await redis.kill();
    const open = [];
    for (let i = 0; i < 4; i++) open.push(await status(`${gw.url}/open/x`));
    expect(open).toEqual([200, 200, 200, 200]);
    expect([await status(`${gw.url}/closed/x`), await status(`${gw.url}/closed/x`)]).toEqual([503, 503]);

    const m = await metrics(gw);
    expect(sum(m, /^sluice_store_errors_total\{route="\/open\/\*"\}/)).toBe(4);
    expect(sum(m, /^sluice_decisions_total\{route="\/open\/\*".*outcome="store_error"\}/)).toBe(4);
    expect(sum(m, /^sluice_decisions_total\{route="\/open\/\*".*outcome="allowed"\}/)).toBe(1);
    expect(sum(m, /^sluice_store_errors_total\{route="\/closed\/\*"\}/)).toBe(2);

    // The gateway's own log: one line per policy per 10 s, not one per request.
    const warned = gw.stderr().split('\n').filter((l) => l.includes('rate-limit store failed'));
    expect(warned.filter((l) => l.includes('"policy":"open"'))).toHaveLength(1);
    expect(warned.filter((l) => l.includes('"policy":"closed"'))).toHaveLength(1);
    // The request log has a line for each request let through without a decision.
    for (let i = 0; i < 100 && (readFileSync(logFile, 'utf8').match(/"route":"\/open\/\*"/g) ?? []).length < 4; i++) await new Promise((r) => setTimeout(r, 50));
    const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"route":"/open/*"'));
    expect(lines).toHaveLength(4);
    expect(lines.every((l) => l.includes('"event":"store_error"') && l.includes('"status":200'))).toBe(true);
  }, 60_000);
});
