/**
 * Quotas (`algorithm: 'quota'`): an allowance per hourly / daily / weekly / monthly period in
 * UTC, counted from the calendar, a billing anchor, or the key's first call. Fake-clock specs for
 * the calendar edges; Memory-vs-Redis agreement is in test/stores/redis-conformance.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../../src/core/clock.js';
import { SluiceConfigError } from '../../../src/core/errors.js';
import { compileRule, type LimitOptions } from '../../../src/core/rule.js';
import { createLimiter } from '../../../src/index.js';

const t = (iso: string) => Date.parse(iso);

/** A limiter of one quota on a manual clock starting at `start`. */
function quotaAt(start: string, options: Omit<LimitOptions, 'algorithm'>) {
  const clock = manualClock(t(start));
  const limiter = createLimiter({ algorithm: 'quota', clock, ...options } as LimitOptions & { clock: typeof clock });
  return { clock, limiter };
}

/** Use up the allowance of `key`, then return the refusal. */
async function exhaust(limiter: ReturnType<typeof createLimiter>, key: string, n: number) {
  for (let i = 0; i < n; i++) expect((await limiter.consume(key)).allowed).toBe(true);
  const refused = await limiter.consume(key);
  expect(refused.allowed).toBe(false);
  return refused;
}

describe('calendar quotas', () => {
  it('monthly: exhausted on Jan 31 at 23:00, admitted again at Feb 1 00:00 UTC, refused until then with Retry-After to the ms', async () => {
    const { clock, limiter } = quotaAt('2027-01-31T23:00:00Z', { period: 'monthly', limit: 3, quotaAnchorMode: 'calendar' });
    const refused = await exhaust(limiter, 'k', 3);
    expect(refused.retryAfterMs).toBe(3_600_000);
    expect(refused.remaining).toBe(0);
    expect(refused.policy).toBe('3-monthly');
    clock.advance(3_600_000 - 1);
    expect((await limiter.consume('k')).allowed).toBe(false);
    clock.advance(1);
    const d = await limiter.consume('k');
    expect(d.allowed).toBe(true);
    expect(d.remaining).toBe(2);
    // February 2027 has 28 days: the next period ends on March 1.
    expect(d.resetMs).toBe(28 * 86_400_000);
  });

  it('weekly calendar periods are ISO weeks: they renew on Monday 00:00 UTC', async () => {
    // 2027-03-07 is a Sunday.
    const { clock, limiter } = quotaAt('2027-03-07T12:00:00Z', { period: 'weekly', limit: 1, quotaAnchorMode: 'calendar' });
    const refused = await exhaust(limiter, 'k', 1);
    expect(refused.retryAfterMs).toBe(12 * 3_600_000);
    clock.set(t('2027-03-08T00:00:00Z'));
    expect((await limiter.consume('k')).allowed).toBe(true);
  });

  it('daily and hourly calendar periods renew at midnight UTC and on the hour (UTC has no DST)', async () => {
    // 2027-03-28 is a DST change in Europe: UTC days stay 24 h.
    const daily = quotaAt('2027-03-28T00:30:00Z', { period: 'daily', limit: 1, quotaAnchorMode: 'calendar' });
    expect((await exhaust(daily.limiter, 'k', 1)).retryAfterMs).toBe(23.5 * 3_600_000);
    const hourly = quotaAt('2027-03-28T00:59:59.999Z', { period: 'hourly', limit: 1, quotaAnchorMode: 'calendar' });
    expect((await exhaust(hourly.limiter, 'k', 1)).retryAfterMs).toBe(1);
  });

  it('a billing anchor on the 31st renews on Feb 28, Mar 31, Apr 30 (no drift); Feb 29 in a leap year', async () => {
    const anchor = '2026-10-31T09:00:00Z';
    const { clock, limiter } = quotaAt('2027-02-27T09:00:00Z', { period: 'monthly', limit: 1, quotaAnchorMode: 'calendar', anchor });
    expect((await exhaust(limiter, 'k', 1)).retryAfterMs).toBe(86_400_000); // until Feb 28 09:00
    for (const renewal of ['2027-02-28T09:00:00Z', '2027-03-31T09:00:00Z', '2027-04-30T09:00:00Z']) {
      clock.set(t(renewal) - 1);
      expect((await limiter.consume('k')).allowed).toBe(false);
      clock.set(t(renewal));
      expect((await limiter.consume('k')).allowed).toBe(true);
    }
    const leap = quotaAt('2028-02-28T10:00:00Z', { period: 'monthly', limit: 1, quotaAnchorMode: 'calendar', anchor });
    // 2028 is a leap year: the period that began on Jan 31 ends on Feb 29 at 09:00, 23 h later.
    expect((await exhaust(leap.limiter, 'k', 1)).retryAfterMs).toBe(23 * 3_600_000);
  });

  it('keys count separately; a cost larger than the allowance is refused for good (Retry-After infinite)', async () => {
    const { limiter } = quotaAt('2027-05-10T00:00:00Z', { period: 'daily', limit: 5, quotaAnchorMode: 'calendar' });
    await exhaust(limiter, 'a', 5);
    expect((await limiter.consume('b', 5)).allowed).toBe(true);
    const tooBig = await limiter.consume('c', 6);
    expect(tooBig.allowed).toBe(false);
    expect(tooBig.retryAfterMs).toBe(Infinity);
    expect(tooBig.remaining).toBe(5);
  });
});

describe('first-api-call quotas', () => {
  it("a key's periods start at its first call (the anchor is stored with the count)", async () => {
    const { clock, limiter } = quotaAt('2027-01-31T17:45:12.345Z', { period: 'monthly', limit: 2 });
    expect((await limiter.peek('k')).allowed).toBe(true); // a peek anchors nothing
    clock.advance(1000);
    const first = await limiter.consume('k');
    expect(first.resetMs).toBe(t('2027-02-28T17:45:13.345Z') - t('2027-01-31T17:45:13.345Z'));
    const refused = await exhaust(limiter, 'k', 1);
    expect(refused.retryAfterMs).toBe(first.resetMs);
    clock.set(t('2027-02-28T17:45:13.345Z'));
    expect((await limiter.consume('k')).allowed).toBe(true);
    // The next period runs to Mar 31 (the anchor's day), not Mar 28.
    expect((await limiter.consume('k')).resetMs).toBe(t('2027-03-31T17:45:13.345Z') - t('2027-02-28T17:45:13.345Z'));
  });

  it('a clock stepping back into an earlier period keeps counting in the stored period', async () => {
    const { clock, limiter } = quotaAt('2027-06-01T00:00:00Z', { period: 'hourly', limit: 2 });
    await limiter.consume('k');
    clock.advance(3_600_000);
    await exhaust(limiter, 'k', 2);
    clock.advance(-10_000);
    expect((await limiter.consume('k')).allowed).toBe(false);
  });
});

describe('bad quota options are configuration errors naming the field', () => {
  const bad: [string, LimitOptions, RegExp][] = [
    ['unknown period', { algorithm: 'quota', limit: 1, period: 'yearly' as 'monthly' }, /^Invalid option "period": unknown period "yearly"; expected one of hourly, daily, weekly, monthly/],
    ['no period', { algorithm: 'quota', limit: 1 }, /^Invalid option "period": is required for a quota/],
    ['period and windowMs', { algorithm: 'quota', limit: 1, period: 'daily', windowMs: 1000 }, /^Invalid option "windowMs": give either "period" or "windowMs"/],
    ['anchor in the future', { algorithm: 'quota', limit: 1, period: 'monthly', quotaAnchorMode: 'calendar', anchor: Date.now() + 86_400_000 }, /^Invalid option "anchor": must not be in the future/],
    ['anchor that is no date', { algorithm: 'quota', limit: 1, period: 'monthly', quotaAnchorMode: 'calendar', anchor: 'next tuesday' }, /^Invalid option "anchor": must be a Date, epoch milliseconds or an ISO 8601 date/],
    ['anchor with first-api-call', { algorithm: 'quota', limit: 1, period: 'monthly', anchor: 0 }, /^Invalid option "anchor": only applies with quotaAnchorMode: calendar/],
    ['unknown anchor mode', { algorithm: 'quota', limit: 1, period: 'monthly', quotaAnchorMode: 'billing' as 'calendar' }, /^Invalid option "quotaAnchorMode": must be one of first-api-call, calendar/],
    ['period on a rate limit', { algorithm: 'gcra', limit: 1, windowMs: 1000, period: 'daily' }, /^Invalid option "period": only applies to algorithm "quota", not gcra/],
  ];
  for (const [what, options, message] of bad) {
    it(what, () => {
      expect(() => compileRule(options)).toThrow(SluiceConfigError);
      expect(() => compileRule(options)).toThrow(message);
    });
  }
});
