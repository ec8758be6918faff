/**
 * Quota policies in the HTTP layer (Zuplo's `quota-inbound` names): `period`, `allowances:
 * { requests }`, `quotaBy`, `quotaAnchorMode`, and their refusal text. A quota is a policy whose
 * rule uses the core's `quota` algorithm instead of `requestsAllowed` per window.
 */
import { periodOf, type QuotaAnchorMode } from '../core/algorithms/quota/index.js';
import type { QuotaPeriod } from '../core/calendar.js';
import type { Decision } from '../core/decision.js';
import { SluiceConfigError } from '../core/errors.js';
import { compileRule, describe, type Rule } from '../core/rule.js';

/** What a quota allows per period. Only `requests` is metered today. */
export interface QuotaAllowances {
  /** Requests (cost units) per period. A positive integer. */
  requests: number;
}

/** The quota fields of a policy. */
export interface QuotaPolicyOptions {
  /** Makes the policy a quota: `hourly`, `daily`, `weekly` or `monthly` (UTC). */
  period?: QuotaPeriod;
  /** The allowance per period. Required with `period`. */
  allowances?: QuotaAllowances;
  /** `first-api-call` (default) or `calendar` (see the core's `QuotaOptions`). */
  quotaAnchorMode?: QuotaAnchorMode;
  /** Calendar mode: the billing anchor (ISO 8601, epoch ms or Date; not in the future). */
  anchor?: string | number | Date;
}

/** Fields that make sense only on a quota. */
export const QUOTA_POLICY_FIELDS = ['period', 'allowances', 'quotaAnchorMode', 'anchor'] as const;

/** The allowance of `allowances`, validated. */
export function allowanceOf(value: unknown, field: string): number {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SluiceConfigError(field, `must be an object like { requests: 1000 }, got ${describe(value)}`);
  }
  for (const k of Object.keys(value)) {
    if (k !== 'requests') throw new SluiceConfigError(`${field}.${k}`, 'unknown meter (only "requests" is metered)');
  }
  const n = (value as { requests?: unknown }).requests;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new SluiceConfigError(`${field}.requests`, `must be an integer >= 1, got ${describe(n)}`);
  }
  return n;
}

/**
 * The rule of a quota policy, counted under `pool`. `anchor` overrides the policy's anchor (a
 * consumer's own billing anchor); `requests` overrides its allowance (a tier's).
 */
export function compileQuotaRule(
  o: QuotaPolicyOptions,
  pool: string,
  at: (f: string) => string,
  override: { requests?: number; anchor?: number } = {},
): Rule {
  const requests = override.requests ?? allowanceOf(o.allowances, at('allowances'));
  const anchor = override.anchor ?? o.anchor;
  const quotaAnchorMode = override.anchor !== undefined ? 'calendar' : o.quotaAnchorMode;
  try {
    return compileRule({
      name: pool,
      algorithm: 'quota',
      limit: requests,
      period: o.period as QuotaPeriod,
      ...(quotaAnchorMode !== undefined ? { quotaAnchorMode } : {}),
      ...(anchor !== undefined ? { anchor } : {}),
    });
  } catch (err) {
    if (err instanceof SluiceConfigError) {
      const field = err.field === 'limit' ? 'allowances.requests' : err.field;
      throw new SluiceConfigError(at(field), err.message.replace(/^Invalid option "[^"]*": /, ''));
    }
    throw err;
  }
}

/**
 * The `detail` of a 429 from an exhausted quota: which quota, and when it renews. A calendar
 * quota's renewal is its period's end, exact; a first-api-call quota's (its anchor is in the
 * store) is `now + retryAfter` to the second.
 */
export function quotaExhaustedDetail(rule: Rule, decision: Decision, nowMs: number, unit = 'requests'): string {
  const q = rule.quota;
  let renews = '; this request costs more than the whole allowance';
  if (Number.isFinite(decision.retryAfterMs)) {
    const at = q?.anchorUs !== undefined ? periodOf(rule, q.anchorUs, Math.floor(nowMs) * 1000).end / 1000 : Math.round((nowMs + decision.retryAfterMs) / 1000) * 1000;
    renews = `; it renews at ${new Date(at).toISOString()}`;
  }
  return `Quota exhausted: the ${q?.period ?? 'period'} allowance of ${rule.limit} ${unit} for "${rule.name}" is used up${renews}`;
}
