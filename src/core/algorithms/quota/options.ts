import { calendarAnchor, QUOTA_PERIODS, type QuotaPeriod } from '../../calendar.js';
import { SluiceConfigError } from '../../errors.js';

/** Where a quota's periods are counted from (Zuplo's `quotaAnchorMode`). */
export type QuotaAnchorMode = 'first-api-call' | 'calendar';

/** The anchor modes, for error messages and schemas. */
export const QUOTA_ANCHOR_MODES: readonly QuotaAnchorMode[] = ['first-api-call', 'calendar'];

/** The quota fields of `LimitOptions` (with `algorithm: 'quota'`). */
export interface QuotaOptions {
  /**
   * How often the allowance renews: `hourly`, `daily`, `weekly` (ISO weeks in calendar mode) or
   * `monthly` (same day of the month, clamped to the month's last day). Instead of `period`, a
   * `windowMs` gives a fixed-length period.
   */
  period?: QuotaPeriod;
  /**
   * `first-api-call` (default): a key's periods start at its first call, stored with its count
   * (a key idle for a whole period re-anchors at its next call). `calendar`: periods start on the
   * calendar (the top of the hour, midnight UTC, Monday 00:00 UTC, the 1st of the month) or on
   * `anchor`.
   */
  quotaAnchorMode?: QuotaAnchorMode;
  /**
   * Calendar mode only: the instant periods are counted from (a billing anchor: a `Date`, epoch
   * ms, or an ISO 8601 string). Must not be in the future.
   */
  anchor?: Date | number | string;
}

/** The compiled quota part of a rule. */
export interface QuotaSpec {
  /** `monthly` counts calendar months; every other period is the rule's fixed `windowUs`. */
  readonly monthly: boolean;
  /** µs epoch of the calendar or billing anchor; undefined in first-api-call mode. */
  readonly anchorUs: number | undefined;
  readonly anchorMode: QuotaAnchorMode;
  readonly period: QuotaPeriod | undefined;
}

const HOUR_MS = 3_600_000;
/** Nominal period lengths: the window reported in `RateLimit-Policy` (`w`); monthly is 30 days. */
export const PERIOD_MS: Record<QuotaPeriod, number> = {
  hourly: HOUR_MS,
  daily: 24 * HOUR_MS,
  weekly: 7 * 24 * HOUR_MS,
  monthly: 30 * 24 * HOUR_MS,
};

function anchorMs(value: unknown, field: string, now: number): number {
  let ms: number;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'number') ms = value;
  else if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}/.test(value)) ms = Date.parse(value);
  else throw new SluiceConfigError(field, `must be a Date, epoch milliseconds or an ISO 8601 date, got ${JSON.stringify(value)}`);
  if (!Number.isInteger(ms)) throw new SluiceConfigError(field, `is not a valid date: ${JSON.stringify(value)}`);
  if (ms < 0) throw new SluiceConfigError(field, `must not be before 1970-01-01, got ${new Date(ms).toISOString()}`);
  if (ms > now) throw new SluiceConfigError(field, `must not be in the future, got ${new Date(ms).toISOString()}`);
  return ms;
}

/**
 * Validate the quota fields of a limit. Returns the spec and the window length in ms (the fixed
 * period, or the nominal length of `period`).
 * @param at builds a field path for error messages.
 * @param now epoch ms, for "anchor in the future".
 */
export function compileQuota(
  options: QuotaOptions & { windowMs?: unknown },
  at: (field: string) => string,
  now = Date.now(),
): { spec: QuotaSpec; windowMs: number | undefined } {
  const { period } = options;
  if (period !== undefined && !QUOTA_PERIODS.includes(period)) {
    throw new SluiceConfigError(at('period'), `unknown period ${JSON.stringify(period)}; expected one of ${QUOTA_PERIODS.join(', ')}`);
  }
  if (period !== undefined && options.windowMs !== undefined) {
    throw new SluiceConfigError(at('windowMs'), 'give either "period" or "windowMs" for a quota, not both');
  }
  if (period === undefined && options.windowMs === undefined) {
    throw new SluiceConfigError(at('period'), `is required for a quota: one of ${QUOTA_PERIODS.join(', ')} (or a fixed windowMs)`);
  }
  const mode = options.quotaAnchorMode ?? 'first-api-call';
  if (!QUOTA_ANCHOR_MODES.includes(mode)) {
    throw new SluiceConfigError(at('quotaAnchorMode'), `must be one of ${QUOTA_ANCHOR_MODES.join(', ')}, got ${JSON.stringify(mode)}`);
  }
  if (options.anchor !== undefined && mode !== 'calendar') {
    throw new SluiceConfigError(at('anchor'), 'only applies with quotaAnchorMode: calendar');
  }
  let anchorUs: number | undefined;
  if (mode === 'calendar') {
    const ms = options.anchor === undefined ? calendarAnchor(period ?? 'hourly') : anchorMs(options.anchor, at('anchor'), now);
    anchorUs = ms * 1000;
  }
  return {
    spec: { monthly: period === 'monthly', anchorUs, anchorMode: mode, period },
    windowMs: period === undefined ? undefined : PERIOD_MS[period],
  };
}

/** Options fields that only a quota takes (an error on any other algorithm). */
export const QUOTA_ONLY_FIELDS = ['period', 'quotaAnchorMode', 'anchor'] as const;
