/**
 * `response_headers_to_add`: the headers Envoy copies onto the client's response, allowed or
 * refused.
 *
 * - `ietf`: `RateLimit-Policy` / `RateLimit` (draft-ietf-httpapi-ratelimit-headers), one member
 *   per counted descriptor, written by the HTTP layer's own writer; `Retry-After` when refused.
 * - `x-ratelimit`: `X-RateLimit-Limit`, `-Remaining`, `-Reset` of the descriptor closest to its
 *   limit (the refusing one when refused), Reset in seconds from now as envoyproxy/ratelimit and
 *   Envoy's own draft-03 headers write it.
 */
import type { RuleOutcome } from '../../core/decision.js';
import { ceilSeconds, writeRateLimitHeaders, type HeaderInput } from '../../http/headers.js';
import type { ConfiguredLimit } from './config.js';

/** Envoy's `config.core.v3.HeaderValue`. */
export interface HeaderValue {
  key: string;
  value: string;
}

/** Which header sets to add. */
export type HeaderSet = 'both' | 'ietf' | 'x-ratelimit' | 'none';

/** The parts of a counted descriptor the headers read. */
export interface HeaderSource {
  readonly limit: ConfiguredLimit;
  /** False for shadow-mode limits. */
  readonly enforce: boolean;
}

/** The policy name shown in IETF headers: the limit's `name`, else its place in the tree (no request values). */
const policyName = (l: ConfiguredLimit): string => l.name || l.path.slice(l.path.indexOf('.') + 1);

/** Milliseconds until the limit gives quota back: the retry wait when refused, the reset otherwise. */
export function untilResetMs(o: RuleOutcome): number {
  if (o.allowed) return o.resetMs;
  return Number.isFinite(o.retryAfterMs) ? o.retryAfterMs : o.windowMs;
}

/** Build the headers of one response. `over` is the overall verdict. */
export function responseHeaders(set: Exclude<HeaderSet, 'none'>, sources: readonly HeaderSource[], outcomes: readonly RuleOutcome[], over: boolean, nowMs: number): HeaderValue[] {
  const out: Record<string, string> = {};
  if (set !== 'x-ratelimit') {
    const inputs: HeaderInput[] = [];
    let refusedMs = 0;
    sources.forEach((s, i) => {
      const o = outcomes[i] as RuleOutcome;
      inputs.push({ name: policyName(s.limit), headerMode: 'ietf', quota: s.limit.requestsPerUnit, outcome: o });
      if (!o.allowed && s.enforce) refusedMs = Math.max(refusedMs, o.retryAfterMs);
    });
    writeRateLimitHeaders(out, inputs, over ? refusedMs : undefined, nowMs);
  }
  if (set !== 'ietf') {
    let pick = -1;
    for (let i = 0; i < sources.length; i++) {
      const o = outcomes[i] as RuleOutcome;
      if (pick < 0) {
        pick = i;
        continue;
      }
      const p = outcomes[pick] as RuleOutcome;
      const refusing = !o.allowed && (sources[i] as HeaderSource).enforce;
      const pickRefusing = !p.allowed && (sources[pick] as HeaderSource).enforce;
      if (refusing !== pickRefusing ? refusing : refusing ? o.retryAfterMs > p.retryAfterMs : o.remaining < p.remaining) pick = i;
    }
    const s = sources[pick] as HeaderSource;
    const o = outcomes[pick] as RuleOutcome;
    out['x-ratelimit-limit'] = String(s.limit.requestsPerUnit);
    out['x-ratelimit-remaining'] = String(Math.max(0, o.remaining));
    out['x-ratelimit-reset'] = String(ceilSeconds(untilResetMs(o)));
  }
  const list: HeaderValue[] = [];
  for (const key in out) list.push({ key, value: out[key] as string });
  return list;
}
