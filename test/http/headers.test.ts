/** Rate-limit response headers: one writer per format, combined by writeRateLimitHeaders. */
import { describe, expect, it } from 'vitest';
import type { RuleOutcome } from '../../src/core/decision.js';
import { writeIetfHeaders, writeLegacyHeaders, writeRateLimitHeaders, type HeaderInput } from '../../src/http/headers.js';

const outcome = (o: Partial<RuleOutcome>): RuleOutcome => ({ policy: 'p', allowed: true, limit: 10, remaining: 5, resetMs: 30_000, retryAfterMs: 0, windowMs: 60_000, ...o });
const input = (name: string, headerMode: HeaderInput['headerMode'], o: Partial<RuleOutcome> = {}): HeaderInput => ({ name, headerMode, quota: 10, outcome: outcome(o) });

describe('header writers', () => {
  it('ietf: one list member per ietf policy, in order; others ignored', () => {
    const out: Record<string, string> = {};
    writeIetfHeaders(out, [input('a', 'ietf'), input('b', 'legacy'), input('c"d', 'ietf', { allowed: false, remaining: 0, retryAfterMs: 1500 })]);
    expect(out).toEqual({ 'ratelimit-policy': '"a";q=10;w=60, "c\\"d";q=10;w=60', ratelimit: '"a";r=5;t=30, "c\\"d";r=0;t=2' });
  });
  it('ietf: one policy name with another quota or window (a caller\'s tier) shows that quota and window', () => {
    const write = (quota: number, windowMs: number) => {
      const out: Record<string, string> = {};
      writeIetfHeaders(out, [{ ...input('tiered', 'ietf', { windowMs }), quota }]);
      return out['ratelimit-policy'];
    };
    expect(write(10, 60_000)).toBe('"tiered";q=10;w=60');
    expect(write(500, 60_000)).toBe('"tiered";q=500;w=60');
    expect(write(500, 3_600_000)).toBe('"tiered";q=500;w=3600');
    expect(write(10, 60_000)).toBe('"tiered";q=10;w=60');
  });
  it('legacy: the policy closest to exhaustion, reset in epoch seconds', () => {
    const out: Record<string, string> = {};
    writeLegacyHeaders(out, [input('a', 'legacy', { remaining: 7 }), input('b', 'legacy', { remaining: 2, resetMs: 10_000 })], 1_000_000);
    expect(out).toEqual({ 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '2', 'x-ratelimit-reset': '1010' });
  });
  it('Retry-After on refusals unless every policy says none', () => {
    const refused: Record<string, string> = {};
    writeRateLimitHeaders(refused, [input('a', 'retry-after', { allowed: false, remaining: 0, retryAfterMs: 200 })], 200, 0);
    expect(refused).toEqual({ 'retry-after': '1' });
    const silent: Record<string, string> = {};
    writeRateLimitHeaders(silent, [input('a', 'none', { allowed: false })], 200, 0);
    expect(silent).toEqual({});
  });
});
