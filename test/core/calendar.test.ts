/**
 * Quota periods in UTC: month ends, leap days, anchors on the 31st, calendar alignment, and the
 * properties every period must have (contains now, periods tile time without gaps or overlap).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addMonths, calendarAnchor, quotaWindow, QUOTA_PERIODS } from '../../src/core/calendar.js';

const t = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

describe('monthly periods', () => {
  it('an anchor on the 31st renews on the last day of shorter months and on the 31st again after them (no drift)', () => {
    const anchor = t('2027-01-31T10:00:00.000Z');
    const starts = Array.from({ length: 8 }, (_, k) => iso(addMonths(anchor, k)));
    expect(starts).toEqual([
      '2027-01-31T10:00:00.000Z',
      '2027-02-28T10:00:00.000Z',
      '2027-03-31T10:00:00.000Z',
      '2027-04-30T10:00:00.000Z',
      '2027-05-31T10:00:00.000Z',
      '2027-06-30T10:00:00.000Z',
      '2027-07-31T10:00:00.000Z',
      '2027-08-31T10:00:00.000Z',
    ]);
  });

  it('February 29 exists in leap years only (2028 yes, 2100 no, 2000 yes)', () => {
    expect(iso(addMonths(t('2028-01-30T00:00:00Z'), 1))).toBe('2028-02-29T00:00:00.000Z');
    expect(iso(addMonths(t('2100-01-29T00:00:00Z'), 1))).toBe('2100-02-28T00:00:00.000Z');
    expect(iso(addMonths(t('2000-01-31T00:00:00Z'), 1))).toBe('2000-02-29T00:00:00.000Z');
    // An anchor on a leap day renews on Feb 28 in common years and on the 29th in leap years.
    expect(iso(addMonths(t('2028-02-29T00:00:00Z'), 12))).toBe('2029-02-28T00:00:00.000Z');
    expect(iso(addMonths(t('2028-02-29T00:00:00Z'), 48))).toBe('2032-02-29T00:00:00.000Z');
  });

  it('the period containing an instant, at and around the boundaries', () => {
    const anchor = t('2027-01-31T00:00:00Z');
    const w = quotaWindow('monthly', anchor, t('2027-03-15T12:00:00Z'));
    expect([iso(w.start), iso(w.end), w.index]).toEqual(['2027-02-28T00:00:00.000Z', '2027-03-31T00:00:00.000Z', 1]);
    // The boundary instant belongs to the new period; one ms before, to the old one.
    expect(quotaWindow('monthly', anchor, t('2027-03-31T00:00:00Z')).index).toBe(2);
    expect(quotaWindow('monthly', anchor, t('2027-03-31T00:00:00Z') - 1).index).toBe(1);
    // Before its anchor day in the same month: still the previous period.
    expect(iso(quotaWindow('monthly', anchor, t('2027-05-30T23:59:59Z')).start)).toBe('2027-04-30T00:00:00.000Z');
  });

  it('calendar months start on the 1st at 00:00 UTC, December to January included', () => {
    const w = quotaWindow('monthly', calendarAnchor('monthly'), t('2027-12-31T23:59:59.999Z'));
    expect([iso(w.start), iso(w.end)]).toEqual(['2027-12-01T00:00:00.000Z', '2028-01-01T00:00:00.000Z']);
    const feb = quotaWindow('monthly', calendarAnchor('monthly'), t('2028-02-29T12:00:00Z'));
    expect(feb.end - feb.start).toBe(29 * 86_400_000);
  });
});

describe('fixed-length periods', () => {
  it('calendar weeks are ISO weeks: Monday 00:00 UTC to the next Monday', () => {
    // 2026-12-01 is a Tuesday.
    const w = quotaWindow('weekly', calendarAnchor('weekly'), t('2026-12-01T18:00:00Z'));
    expect([iso(w.start), iso(w.end)]).toEqual(['2026-11-30T00:00:00.000Z', '2026-12-07T00:00:00.000Z']);
  });

  it('calendar days and hours are aligned to UTC midnight and the top of the hour', () => {
    expect(iso(quotaWindow('daily', calendarAnchor('daily'), t('2026-12-01T23:59:59Z')).start)).toBe('2026-12-01T00:00:00.000Z');
    expect(iso(quotaWindow('hourly', calendarAnchor('hourly'), t('2026-12-01T18:44:10Z')).end)).toBe('2026-12-01T19:00:00.000Z');
  });

  it('first-api-call anchors keep the anchor\'s minute and second', () => {
    const anchor = t('2026-12-01T18:44:10.123Z');
    const w = quotaWindow('daily', anchor, t('2026-12-05T08:00:00Z'));
    expect([iso(w.start), w.index]).toEqual(['2026-12-04T18:44:10.123Z', 3]);
  });
});

describe('properties (any period, anchor and instant from 1970 to 2200)', () => {
  const instant = fc.integer({ min: 0, max: Date.UTC(2200, 0, 1) });
  const period = fc.constantFrom(...QUOTA_PERIODS);

  it('the period contains the instant and periods tile time: next.start = end, previous.end = start', () => {
    fc.assert(
      fc.property(period, instant, instant, (p, anchor, now) => {
        const w = quotaWindow(p, anchor, now);
        expect(w.start).toBeLessThanOrEqual(now);
        expect(now).toBeLessThan(w.end);
        const next = quotaWindow(p, anchor, w.end);
        expect(next.start).toBe(w.end);
        expect(next.index).toBe(w.index + 1);
        const prev = quotaWindow(p, anchor, w.start - 1);
        expect(prev.end).toBe(w.start);
      }),
      { numRuns: 3000 },
    );
  });

  it('monthly periods last 28 to 31 days and start on min(anchor day, days in month)', () => {
    fc.assert(
      fc.property(instant, instant, (anchor, now) => {
        const w = quotaWindow('monthly', anchor, now);
        const days = (w.end - w.start) / 86_400_000;
        expect(days).toBeGreaterThanOrEqual(28);
        expect(days).toBeLessThanOrEqual(31);
        const s = new Date(w.start);
        const dim = new Date(Date.UTC(s.getUTCFullYear(), s.getUTCMonth() + 1, 0)).getUTCDate();
        expect(s.getUTCDate()).toBe(Math.min(new Date(anchor).getUTCDate(), dim));
        const timeOfDay = (ms: number) => ((ms % 86_400_000) + 86_400_000) % 86_400_000;
        expect(timeOfDay(w.start)).toBe(timeOfDay(anchor));
      }),
      { numRuns: 3000 },
    );
  });
});
