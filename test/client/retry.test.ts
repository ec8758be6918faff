/** Retries of 5xx and network errors: idempotent only, capped, budgeted, inside a deadline. */
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, DeadlineExceededError, RetryBudgetExceededError, type Client } from '../../src/client.js';
import { startStrictServer, type StrictServer } from './support/strict-server.js';

let server: StrictServer | undefined;
let client: Client | undefined;
afterEach(async () => {
  await client?.close();
  await server?.close();
  client = undefined;
  server = undefined;
});
const groups = [{ name: 'api', limit: 1000, windowMs: 1000, match: '/' }];
const fast = { baseMs: 5, capMs: 20 };

describe('retries', () => {
  it('retries a GET after 503 and 502, then returns the 200', async () => {
    server = await startStrictServer({ groups, headers: 'none', failHook: (_r, n) => (n === 1 ? 503 : n === 2 ? 502 : undefined) });
    client = createClient({ baseUrl: server.url, retry: fast });
    const retried: string[] = [];
    client.on('retried', (e) => retried.push(e.reason));
    const res = await client.fetch('/x');
    expect(res.status).toBe(200);
    expect(retried).toEqual(['503', '502']);
    expect(server.requests).toBe(3);
  });

  it('does not retry a POST (not idempotent) unless marked idempotent', async () => {
    server = await startStrictServer({ groups, headers: 'none', failHook: (_r, n) => (n <= 1 ? 500 : undefined) });
    client = createClient({ baseUrl: server.url, retry: fast });
    const res = await client.fetch('/x', { method: 'POST', body: 'a' });
    expect(res.status).toBe(500);
    expect(server.requests).toBe(1);
    const res2 = await client.fetch('/x', { method: 'POST', body: 'a', idempotent: true });
    expect(res2.status).toBe(200);
  });

  it('retries network errors (socket destroyed) for GET', async () => {
    server = await startStrictServer({ groups, headers: 'none', failHook: (_r, n) => (n === 1 ? 'drop' : undefined) });
    client = createClient({ baseUrl: server.url, retry: fast });
    const res = await client.fetch('/x');
    expect(res.status).toBe(200);
    expect(server.requests).toBe(2);
  });

  it('stops after `retries` and hands back the last response', async () => {
    server = await startStrictServer({ groups, headers: 'none', failHook: () => 503 });
    client = createClient({ baseUrl: server.url, retry: { ...fast, retries: 2 } });
    const res = await client.fetch('/x');
    expect(res.status).toBe(503);
    expect(server.requests).toBe(3);
  });

  it('a spent retry budget fails with RetryBudgetExceededError instead of adding load', async () => {
    server = await startStrictServer({ groups, headers: 'none', failHook: () => 500 });
    client = createClient({ baseUrl: server.url, retry: { ...fast, retries: 5, budgetRatio: 0.1, budgetMinPerSecond: 0.1 } });
    // Budget over 10 s: 0.1 x 10 requests + 0.1/s x 10 s = 2 retries for the whole batch.
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => client!.fetch('/x')));
    const budgetErrors = results.filter((r) => r.status === 'rejected' && r.reason instanceof RetryBudgetExceededError);
    expect(budgetErrors.length).toBeGreaterThanOrEqual(8);
    expect(server.requests).toBeLessThanOrEqual(12);
    expect((budgetErrors[0] as PromiseRejectedResult).reason.status).toBe(500);
  });

  it('a call deadline bounds a slow server', async () => {
    server = await startStrictServer({ groups, headers: 'none', latencyMs: 2000 });
    client = createClient({ baseUrl: server.url, timeoutMs: 200 });
    await expect(client.fetch('/x')).rejects.toBeInstanceOf(DeadlineExceededError);
  });

  it('a deadline shorter than a 429 pause fails at once, without waiting it out', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 1, windowMs: 1000, penaltyMs: 10_000, match: '/' }], headers: 'none' });
    client = createClient({ baseUrl: server.url, groups: { api: { limit: 3, windowMs: 1000 } }, defaultGroup: 'api', concurrency: 1 });
    await client.fetch('/a');
    const t = Date.now();
    const err = await client.fetch('/b', { timeoutMs: 3000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect(Date.now() - t).toBeLessThan(2500);
  });
});
