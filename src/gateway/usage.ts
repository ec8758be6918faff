/**
 * What a consumer has used: the admin API's `GET /consumers/:sub/usage` rows, and the billing
 * anchor the admin API accepts.
 */
import { periodOf } from '../core/algorithms/quota/index.js';
import type { Decision } from '../core/decision.js';
import type { Rule } from '../core/rule.js';

/** One policy's usage for one bucket. */
export interface UsageRow {
  kind: 'quota' | 'rate-limit';
  /** Quotas: `hourly` ... `monthly`. */
  period?: string;
  /** Units allowed per period (quota) or per window (rate limit). */
  allowance: number;
  used: number;
  remaining: number;
  windowMs: number;
  /**
   * Quotas: when the current period ends (ISO 8601); `null` for a first-api-call quota not used
   * yet (its period starts at the next call).
   */
  resetsAt?: string | null;
}

/** The usage row of a cost-0 peek decision under `rule`, at `nowMs`. */
export function usageOf(rule: Rule, d: Decision, nowMs: number): UsageRow {
  const base = { allowance: d.limit, used: d.limit - d.remaining, remaining: d.remaining, windowMs: rule.windowMs };
  if (rule.quota === undefined) return { kind: 'rate-limit', ...base };
  // A calendar period's end is exact from the anchor; a first-api-call one from the decision.
  let resetsAt: string | null = null;
  if (rule.quota.anchorUs !== undefined) resetsAt = new Date(periodOf(rule, rule.quota.anchorUs, Math.floor(nowMs) * 1000).end / 1000).toISOString();
  else if (d.resetMs > 0) resetsAt = new Date(nowMs + d.resetMs).toISOString();
  return { kind: 'quota', ...(rule.quota.period !== undefined ? { period: rule.quota.period } : {}), ...base, resetsAt };
}

/** A billing anchor from the admin API: an ISO 8601 date in the past (epoch ms), else a 400 message. */
export function parseBillingAnchor(v: unknown): number | string {
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(v)) return `billingAnchor must be an ISO 8601 date (e.g. 2026-11-15T00:00:00Z) or null`;
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) return `billingAnchor "${v.slice(0, 40)}" is not a valid date`;
  if (ms > Date.now()) return `billingAnchor must not be in the future`;
  if (ms < 0) return `billingAnchor must not be before 1970`;
  return ms;
}
