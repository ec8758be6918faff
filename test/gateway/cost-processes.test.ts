/**
 * Spec: a cost from the response is exact across gateway processes sharing one Redis, and its
 * overdraft stays within the documented bound: two `sluice serve` processes (the real CLI), an LLM
 * upstream that holds every admitted request until all are in flight and then reports
 * `x-tokens-used: max`. Admitted while budget remained: capacity / reserve requests, whichever
 * process they came through; overdraft at most admitted x (max - reserve); both processes then
 * refuse with the same Retry-After until it is paid back.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deletePrefix, REDIS_URL } from '../support/redis-server.js';
import { spawnGateway, upstream, writeConfig, type GatewayProcess } from './support.js';

const prefix = `sluice-cost-test-${randomBytes(4).toString('hex')}:`;
const MAX = 7;
const RESERVE = 1;

let llm: Awaited<ReturnType<typeof upstream>>;
let held = 0;
let release!: () => void;
const gate = new Promise<void>((r) => (release = r));
let a: GatewayProcess;
let b: GatewayProcess;

beforeAll(async () => {
  llm = await upstream((_req, res) => {
    held++;
    void gate.then(() => res.writeHead(200, { 'x-tokens-used': String(MAX) }).end('{}'));
  });
  const file = writeConfig({
    store: { type: 'redis', url: REDIS_URL, prefix, timeoutMs: 5000 },
    upstreams: { llm: { url: llm.url, headersTimeoutMs: 60_000 } },
    policies: {
      // GCRA, 10 tokens per 100 s: a bucket of 10, one token back every 10 s.
      tokens: { rateLimitBy: 'all', requestsAllowed: 10, timeWindowSeconds: 100, cost: { responseHeader: 'x-tokens-used', max: MAX, reserve: RESERVE } },
    },
    routes: [{ path: '/v1/completions', upstream: 'llm', policies: ['tokens'] }],
  });
  [a, b] = await Promise.all([spawnGateway(file), spawnGateway(file)]);
}, 60_000);

afterAll(async () => {
  release();
  await Promise.all([a?.stop(), b?.stop()]);
  await llm?.close();
  await deletePrefix(REDIS_URL, prefix);
});

describe('cost from the response, two gateway processes on one Redis', () => {
  it('N requests in flight through both: admitted while budget remained, overdraft within admitted x (max - reserve), the same Retry-After on both', async () => {
    const n = 20;
    let refused = 0;
    const one = async (base: string) => {
      const r = await fetch(`${base}/v1/completions`);
      await r.arrayBuffer();
      if (r.status === 429) refused++;
      return r.status;
    };
    const calls = [...Array.from({ length: n }, () => one(a.url)), ...Array.from({ length: n }, () => one(b.url))];
    for (let i = 0; i < 1000 && held + refused < 2 * n; i++) await new Promise((r) => setTimeout(r, 10));
    expect(held + refused).toBe(2 * n);
    const admitted = held;
    // Every reserve was decided before any response: a bucket of 10 admits 10 / reserve of them.
    expect(admitted).toBe(10 / RESERVE);
    release();
    const codes = await Promise.all(calls);
    expect(codes.filter((c) => c === 200)).toHaveLength(admitted);
    const overdraft = admitted * MAX - 10;
    expect(overdraft).toBeLessThanOrEqual(admitted * (MAX - RESERVE));
    // The charges land when each proxied response finishes; then both processes see the whole debt.
    const waits: number[] = [];
    for (const gw of [a, b]) {
      let wait = 0;
      for (let i = 0; i < 100 && wait < (overdraft + RESERVE) * 10 - 5; i++) {
        const r = await fetch(`${gw.url}/v1/completions`);
        await r.arrayBuffer();
        expect(r.status).toBe(429);
        wait = Number(r.headers.get('retry-after'));
        if (wait < (overdraft + RESERVE) * 10 - 5) await new Promise((res) => setTimeout(res, 20));
      }
      waits.push(wait);
    }
    // Owed `overdraft` tokens at 10 s each plus the next request's reserve, less the seconds elapsed.
    for (const w of waits) {
      expect(w).toBeLessThanOrEqual((overdraft + RESERVE) * 10);
      expect(w).toBeGreaterThan((overdraft + RESERVE) * 10 - 5);
    }
  }, 60_000);
});
