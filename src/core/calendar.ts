/**
 * Quota periods in UTC: which period contains an instant, for a quota anchored at an instant.
 *
 * - `hourly`, `daily`, `weekly` are fixed lengths (UTC has no DST): periods are
 *   `[anchor + k·len, anchor + (k+1)·len)`.
 * - `monthly` periods start on the anchor's day of the month at the anchor's time of day, clamped
 *   to the month's last day (an anchor on the 31st renews on Feb 28/29, Apr 30, ... and on the 31st
 *   again whenever the month has one: clamping never drifts, each start is computed from the
 *   anchor, not from the previous period).
 *
 * Calendar-aligned quotas use {@link calendarAnchor}: the top of the hour, midnight UTC, Monday
 * 00:00 UTC (ISO weeks) and the 1st of the month at 00:00 UTC.
 */

/** How often a quota renews. */
export type QuotaPeriod = 'hourly' | 'daily' | 'weekly' | 'monthly';

/** The periods, in the order operators list them. */
export const QUOTA_PERIODS: readonly QuotaPeriod[] = ['hourly', 'daily', 'weekly', 'monthly'];

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const FIXED: Record<Exclude<QuotaPeriod, 'monthly'>, number> = { hourly: HOUR, daily: DAY, weekly: 7 * DAY };
/** 1970-01-05T00:00:00Z, the first Monday of the epoch. */
const FIRST_MONDAY = 4 * DAY;

/** One quota period: `[start, end)` in epoch milliseconds, and its index counted from the anchor. */
export interface QuotaWindow {
  readonly start: number;
  readonly end: number;
  /** 0 for the period that starts at the anchor; negative before it. */
  readonly index: number;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

/** The anchor moved by `k` months, its day clamped to the target month's length. */
export function addMonths(anchor: number, k: number): number {
  const a = new Date(anchor);
  const total = a.getUTCFullYear() * 12 + a.getUTCMonth() + k;
  const year = Math.floor(total / 12);
  const month = total - year * 12;
  const day = Math.min(a.getUTCDate(), daysInMonth(year, month));
  const timeOfDay = anchor - Date.UTC(a.getUTCFullYear(), a.getUTCMonth(), a.getUTCDate());
  return Date.UTC(year, month, day) + timeOfDay;
}

/** The period of `period` containing `now`, for a quota anchored at `anchor` (both epoch ms). */
export function quotaWindow(period: QuotaPeriod, anchor: number, now: number): QuotaWindow {
  if (period !== 'monthly') {
    const len = FIXED[period];
    const index = Math.floor((now - anchor) / len);
    return { start: anchor + index * len, end: anchor + (index + 1) * len, index };
  }
  const a = new Date(anchor);
  const n = new Date(now);
  let index = (n.getUTCFullYear() - a.getUTCFullYear()) * 12 + (n.getUTCMonth() - a.getUTCMonth());
  // The candidate starts in now's month; if that is still ahead of now, the period began a month earlier.
  if (addMonths(anchor, index) > now) index--;
  return { start: addMonths(anchor, index), end: addMonths(anchor, index + 1), index };
}

/** The calendar-aligned anchor of a period: every calendar period starts on it plus whole periods. */
export function calendarAnchor(period: QuotaPeriod): number {
  return period === 'weekly' ? FIRST_MONDAY : 0;
}
