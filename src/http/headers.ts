/**
 * Rate-limit response headers from decisions.
 *
 * - `retry-after` (Zuplo's default): `Retry-After: <seconds>` on refusals only.
 * - `ietf`: draft-ietf-httpapi-ratelimit-headers-10, on every response:
 *   `RateLimit-Policy: "<name>";q=<quota>;w=<window s>` and `RateLimit: "<name>";r=<remaining>;t=<s>`,
 *   one list member per policy that applied, in evaluation order; plus `Retry-After` on refusals.
 * - `legacy`: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch seconds, the
 *   GitHub / express-rate-limit convention) for the policy closest to exhaustion; plus `Retry-After`.
 * - `none`: nothing.
 */
import type { RuleOutcome } from '../core/decision.js';
import type { HeaderMode } from './options.js';

/** One applied policy's outcome with what the headers need. */
export interface HeaderInput {
  /** Display name (the policy's pool/counter name). */
  readonly name: string;
  readonly headerMode: HeaderMode;
  /** Requests allowed per window (the IETF `q`). */
  readonly quota: number;
  readonly outcome: RuleOutcome;
}

/** Whole seconds, rounded up, at least `min`. Infinity (never admissible) maps to one day. */
export function ceilSeconds(ms: number, min = 0): number {
  if (!Number.isFinite(ms)) return 86_400;
  return Math.max(min, Math.ceil(ms / 1000));
}

/** `Retry-After` for a refusal: whole seconds rounded up, never 0. */
export function retryAfterSeconds(retryAfterMs: number): number {
  return ceilSeconds(retryAfterMs, 1);
}

/** An RFC 9651 String: printable ASCII only, `"` and `\` escaped. Other characters become `_`. */
export function sfString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) out += `\\${s[i]}`;
    else if (c >= 0x20 && c <= 0x7e) out += s[i];
    else out += '_';
  }
  return `${out}"`;
}

// A policy's name, quota and window rarely change between responses: serialise its name and its
// `RateLimit-Policy` member once per (name, quota, window), not per response.
interface Serialised {
  readonly name: string;
  readonly quota: number;
  readonly w: number;
  readonly member: string;
}
const serialised = new Map<string, Serialised>();
function serialisedPolicy(name: string, quota: number, w: number): Serialised {
  const s = serialised.get(name);
  if (s !== undefined && s.quota === quota && s.w === w) return s;
  const sf = s?.name ?? sfString(name);
  const fresh = { name: sf, quota, w, member: `${sf};q=${sfInt(quota)};w=${sfInt(w)}` };
  if (serialised.size >= 1000) serialised.clear();
  serialised.set(name, fresh);
  return fresh;
}

/** SF Integers have at most 15 digits. */
const sfInt = (n: number) => Math.min(999_999_999_999_999, Math.max(0, Math.floor(n)));

/**
 * IETF draft-10: `RateLimit-Policy` and `RateLimit`, one list member per `ietf` policy that applied,
 * in evaluation order.
 */
export function writeIetfHeaders(out: Record<string, string>, inputs: readonly HeaderInput[]): void {
  let policy = '';
  let state = '';
  for (const h of inputs) {
    if (h.headerMode !== 'ietf') continue;
    const o = h.outcome;
    const p = serialisedPolicy(h.name, h.quota, ceilSeconds(o.windowMs, 1));
    // t: seconds until this policy gives quota back: the retry time when it refuses, its reset otherwise.
    const t = o.allowed ? ceilSeconds(o.resetMs) : retryAfterSeconds(o.retryAfterMs);
    policy = policy ? `${policy}, ${p.member}` : p.member;
    state += `${state ? ', ' : ''}${p.name};r=${sfInt(o.remaining)};t=${sfInt(t)}`;
  }
  if (policy) {
    out['ratelimit-policy'] = policy;
    out['ratelimit'] = state;
  }
}

/** `X-RateLimit-Limit/Remaining/Reset` (epoch seconds) of the `legacy` policy closest to exhaustion. */
export function writeLegacyHeaders(out: Record<string, string>, inputs: readonly HeaderInput[], nowMs: number): void {
  let legacy: HeaderInput | undefined;
  for (const h of inputs) {
    if (h.headerMode !== 'legacy') continue;
    const o = h.outcome;
    if (legacy === undefined || o.remaining < legacy.outcome.remaining || (o.remaining === legacy.outcome.remaining && o.resetMs > legacy.outcome.resetMs)) legacy = h;
  }
  if (legacy === undefined) return;
  const o = legacy.outcome;
  out['x-ratelimit-limit'] = String(legacy.quota);
  out['x-ratelimit-remaining'] = String(o.remaining);
  out['x-ratelimit-reset'] = String(Math.ceil((nowMs + (o.allowed ? o.resetMs : retryAfterSeconds(o.retryAfterMs) * 1000)) / 1000));
}

/** `Retry-After` of a refusal, in whole seconds (RFC 9110 §10.2.3). */
export function writeRetryAfter(out: Record<string, string>, refusedMs: number): void {
  out['retry-after'] = String(retryAfterSeconds(refusedMs));
}

/**
 * Write the headers of `inputs` into `out`, one writer per format. `refusedMs` is the wait of a
 * refused request (the `Retry-After`, sent unless every policy says `none`), or `undefined` when
 * the request is allowed. Every response path of the engine, refusals included, goes through here.
 */
export function writeRateLimitHeaders(out: Record<string, string>, inputs: readonly HeaderInput[], refusedMs: number | undefined, nowMs: number): void {
  writeIetfHeaders(out, inputs);
  writeLegacyHeaders(out, inputs, nowMs);
  if (refusedMs !== undefined && inputs.some((h) => h.headerMode !== 'none')) writeRetryAfter(out, refusedMs);
}
