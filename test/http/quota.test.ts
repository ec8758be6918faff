/**
 * Quota policies and count-by-response policies in the policy engine: the 429 says the quota is
 * exhausted and when it renews, `Retry-After` runs to the next period, the IETF headers carry the
 * quota's name; only the configured response statuses are charged.
 */
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/core/clock.js';
import { SluiceConfigError } from '../../src/core/errors.js';
import { createPolicyEngine, type PolicyEngine } from '../../src/http/engine.js';
import type { HttpRequestInfo } from '../../src/http/request.js';

const req = (over: Partial<HttpRequestInfo> = {}): HttpRequestInfo => ({ method: 'GET', path: '/r', headers: {}, remoteAddress: '127.0.0.1', ...over });
const t = (iso: string) => Date.parse(iso);

/** Send a request and report its response status to the engine. */
async function send(engine: PolicyEngine, status = 200, over: Partial<HttpRequestInfo> = {}) {
  const r = await engine.check(req(over));
  if (r.action === 'allow') r.complete(status);
  return r;
}

describe('a quota policy', () => {
  it('refuses with 429, a detail saying the quota is exhausted, Retry-After to the next period and IETF headers named after it', async () => {
    const clock = manualClock(t('2027-01-31T22:00:00Z'));
    const engine = createPolicyEngine({
      clock,
      logger: false,
      policies: [{ name: 'monthly', quotaBy: 'ip', period: 'monthly', allowances: { requests: 2 }, quotaAnchorMode: 'calendar', headerMode: 'ietf' }],
    });
    const first = await send(engine);
    expect(first.action).toBe('allow');
    expect(first.headers['ratelimit-policy']).toBe('"monthly";q=2;w=2592000');
    expect(first.headers.ratelimit).toBe('"monthly";r=1;t=7200');
    await send(engine);
    const refused = await send(engine);
    expect(refused.action).toBe('deny');
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('7200');
    const body = JSON.parse(refused.body as string) as { detail: string; status: number };
    expect(body.status).toBe(429);
    expect(body.detail).toBe('Quota exhausted: the monthly allowance of 2 requests for "monthly" is used up; it renews at 2027-02-01T00:00:00.000Z');
    clock.set(t('2027-02-01T00:00:00Z'));
    expect((await send(engine)).action).toBe('allow');
  });

  it('an identifier can give a caller its own allowance (tier) and billing anchor', async () => {
    const clock = manualClock(t('2027-03-10T12:00:00Z'));
    const engine = createPolicyEngine({
      clock,
      logger: false,
      policies: [
        {
          name: 'q',
          period: 'monthly',
          allowances: { requests: 1 },
          quotaAnchorMode: 'calendar',
          rateLimitBy: 'function',
          identifier: (r) => (r.headers['x-plan'] === 'pro' ? { key: 'pro', requestsAllowed: 3, quotaAnchor: t('2026-11-15T00:00:00Z') } : { key: 'free' }),
        },
      ],
    });
    const pro = { headers: { 'x-plan': 'pro' } };
    for (let i = 0; i < 3; i++) expect((await send(engine, 200, pro)).action).toBe('allow');
    const refused = await send(engine, 200, pro);
    // The pro caller's month runs from the 15th: it renews on March 15, not April 1.
    expect(refused.headers['retry-after']).toBe(String((t('2027-03-15T00:00:00Z') - clock()) / 1000));
    expect((await send(engine)).action).toBe('allow');
    expect((await send(engine)).action).toBe('deny');
  });

  it('bad quota options are configuration errors naming the option', () => {
    const bad: [object, string][] = [
      [{ period: 'yearly', allowances: { requests: 1 } }, 'p.period'],
      [{ period: 'monthly' }, 'p.allowances'],
      [{ period: 'monthly', allowances: { requests: 0.5 } }, 'p.allowances.requests'],
      [{ period: 'monthly', allowances: { requests: 5, tokens: 3 } }, 'p.allowances.tokens'],
      [{ period: 'monthly', allowances: { requests: 5 }, requestsAllowed: 5 }, 'p.requestsAllowed'],
      [{ period: 'monthly', allowances: { requests: 5 }, quotaAnchorMode: 'calendar', anchor: '2999-01-01' }, 'p.anchor'],
      [{ requestsAllowed: 5, timeWindowMinutes: 1, allowances: { requests: 5 } }, 'p.allowances'],
      [{ period: 'monthly', allowances: { requests: 5 }, quotaBy: 'user', rateLimitBy: 'ip' }, 'p.quotaBy'],
      [{ period: 'monthly', allowances: { requests: 5 }, quotaOnStatusCodes: '200-99' }, 'p.quotaOnStatusCodes'],
      [{ period: 'monthly', allowances: { requests: 5 }, quotaOnStatusCodes: 'ok' }, 'p.quotaOnStatusCodes'],
      [{ requestsAllowed: 5, timeWindowMinutes: 1, skipFailedRequests: 'yes' }, 'p.skipFailedRequests'],
      [{ requestsAllowed: 5, timeWindowMinutes: 1, skipSuccessfulRequests: true, skipFailedRequests: true }, 'p.skipFailedRequests'],
    ];
    for (const [options, field] of bad) {
      let err: unknown;
      try {
        createPolicyEngine({ policies: [{ name: 'p', ...options }] });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(options)).toBeInstanceOf(SluiceConfigError);
      expect((err as SluiceConfigError).field, JSON.stringify(options)).toBe(field);
    }
  });
});

describe('counting by response', () => {
  it('quotaOnStatusCodes "200-399": only those responses are charged; an exhausted quota refuses before the upstream', async () => {
    const engine = createPolicyEngine({
      logger: false,
      policies: [{ name: 'q', period: 'daily', allowances: { requests: 2 }, quotaOnStatusCodes: '200-399' }],
    });
    expect(engine.needsCompletion).toBe(true);
    for (let i = 0; i < 5; i++) expect((await send(engine, 500)).action).toBe('allow');
    expect((await send(engine, 404)).action).toBe('allow');
    expect((await send(engine, 201)).action).toBe('allow');
    expect((await send(engine, 302)).action).toBe('allow');
    const refused = await send(engine, 200);
    expect(refused.action).toBe('deny');
    expect(JSON.parse(refused.body as string).detail).toMatch(/^Quota exhausted/);
  });

  it('skipFailedRequests on a rate limit: 4xx/5xx responses are free, successes count', async () => {
    const engine = createPolicyEngine({ logger: false, policies: [{ name: 'p', requestsAllowed: 2, timeWindowMinutes: 1, skipFailedRequests: true }] });
    for (let i = 0; i < 4; i++) expect((await send(engine, 503)).action).toBe('allow');
    await send(engine, 200);
    await send(engine, 204);
    const refused = await send(engine, 200);
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body as string).detail).toBe('Rate limit exceeded');
  });

  it('skipSuccessfulRequests: only failures count (a brute-force guard)', async () => {
    const engine = createPolicyEngine({ logger: false, policies: [{ name: 'p', requestsAllowed: 2, timeWindowMinutes: 1, skipSuccessfulRequests: true }] });
    for (let i = 0; i < 4; i++) expect((await send(engine, 200)).action).toBe('allow');
    await send(engine, 403);
    await send(engine, 403);
    expect((await send(engine, 200)).action).toBe('deny');
  });

  it('countOnStatusCodes as a list of statuses and ranges', async () => {
    const engine = createPolicyEngine({ logger: false, policies: [{ name: 'p', requestsAllowed: 1, timeWindowMinutes: 1, countOnStatusCodes: [201, '500-502'] }] });
    await send(engine, 200);
    await send(engine, 503);
    expect((await send(engine, 200)).action).toBe('allow');
    await send(engine, 501);
    expect((await send(engine, 200)).action).toBe('deny');
  });

  it('a request never completed (client gone, complete not called) is not charged', async () => {
    const engine = createPolicyEngine({ logger: false, policies: [{ name: 'p', requestsAllowed: 1, timeWindowMinutes: 1, countOnStatusCodes: '200-299' }] });
    for (let i = 0; i < 3; i++) expect((await engine.check(req())).action).toBe('allow');
  });
});
