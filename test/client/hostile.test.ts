/** Hostile rate-limit headers end to end: the client clamps, reports and goes on; it never hangs. */
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, RateLimitWaitTooLongError, type Client } from '../../src/client.js';
import { startStrictServer, type StrictServer } from './support/strict-server.js';

let server: StrictServer | undefined;
let client: Client | undefined;
afterEach(async () => {
  await client?.close();
  await server?.close();
  client = undefined;
  server = undefined;
});

/** A server whose first response is a 429 with `headers`, then 200s carrying `headers`. */
async function hostile(headers: Record<string, string>, first429 = true) {
  let n = 0;
  server = await startStrictServer({
    groups: [{ name: 'api', limit: 1000, windowMs: 1000, match: '/' }],
    headers: 'none',
    failHook: () => (first429 && ++n === 1 ? 429 : undefined),
    headerHook: () => headers,
  });
  client = createClient({ baseUrl: server.url, defaultRetryAfterMs: 300, minPauseMs: 100, maxWaitMs: 10_000 });
  const warnings: string[] = [];
  client.on('warning', (w) => warnings.push(`${w.header}: ${w.reason}`));
  return warnings;
}

describe('hostile headers', () => {
  const cases: [string, Record<string, string>][] = [
    ['negative Retry-After', { 'retry-after': '-5' }],
    ['non-numeric Retry-After', { 'retry-after': 'later, maybe' }],
    ['Retry-After date in the past', { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }],
    ['16-digit remaining and limit', { 'x-rate-limit-limit': '9999999999999999', 'x-rate-limit-remaining': '1000000000000000', 'x-rate-limit-window': '1' }],
    ['negative remaining, zero window', { 'x-rate-limit-limit': '5', 'x-rate-limit-remaining': '-1', 'x-rate-limit-window': '0' }],
    ['reset far in the past', { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1000000001' }],
    ['malformed RateLimit', { ratelimit: '"d";r=-4;t=1.5', 'ratelimit-policy': 'garbage((' }],
    ['Retry-After list with garbage', { 'retry-after': '3, soon' }],
    ['Retry-After with conflicting values', { 'retry-after': '0, 0.2' }],
    ['Retry-After in an ISO format Date.parse would take', { 'retry-after': '2015-10-21T07:28:00Z' }],
    ['negative Reset-After', { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': '-1' }],
    ['Shopify level without capacity', { 'x-shopify-shop-api-call-limit': '40' }],
  ];
  for (const [name, headers] of cases) {
    it(`${name}: reported, and the call completes`, async () => {
      const warnings = await hostile(headers);
      const res = await client!.fetch('/x');
      expect(res.status).toBe(200);
      expect(warnings.length).toBeGreaterThan(0);
      // Further calls are not stuck either.
      expect((await client!.fetch('/y')).status).toBe(200);
    });
  }

  it('a huge Retry-After is clamped to 24 h and fails fast with the wait, instead of sleeping', async () => {
    const warnings = await hostile({ 'retry-after': '99999999999999999' });
    const t = Date.now();
    const err = await client!.fetch('/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitWaitTooLongError);
    expect((err as RateLimitWaitTooLongError).waitMs).toBeGreaterThan(86_000_000);
    expect((err as RateLimitWaitTooLongError).waitMs).toBeLessThanOrEqual(86_400_000);
    expect(Date.now() - t).toBeLessThan(2000);
    expect(warnings.some((w) => w.startsWith('retry-after'))).toBe(true);
  });

  it('a huge reset with remaining 0 does not park the lane forever: it fails fast', async () => {
    await hostile({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '99999999999999' }, false);
    expect((await client!.fetch('/x')).status).toBe(200);
    const err = await client!.fetch('/y').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitWaitTooLongError);
  });

  it('the logger receives every warning', async () => {
    const logged: object[] = [];
    server = await startStrictServer({ groups: [{ name: 'api', limit: 1000, windowMs: 1000, match: '/' }], headers: 'none', headerHook: () => ({ 'x-rate-limit-remaining': 'NaN' }) });
    client = createClient({ baseUrl: server.url, logger: { warn: (o) => logged.push(o) } });
    await client.fetch('/x');
    expect(logged).toEqual([expect.objectContaining({ header: 'x-rate-limit-remaining', value: 'NaN', group: 'default' })]);
  });
});
