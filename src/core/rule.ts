import { MAX_LIMIT, MAX_SLIDING_LOG_LIMIT } from './algorithms/limits.js';
import { ALGORITHM_OPTIONS, ALGORITHMS, findAlgorithm, type AlgorithmName, type AlgorithmOption } from './algorithms/registry.js';
import { compileQuota, QUOTA_ONLY_FIELDS, type QuotaOptions, type QuotaSpec } from './algorithms/quota/options.js';
import type { BlockSpec } from './algorithms/block/step.js';
import { SluiceConfigError } from './errors.js';

export { MAX_LIMIT, MAX_SLIDING_LOG_LIMIT };

/**
 * The counting algorithms.
 *
 * - `gcra` (alias `token-bucket`): a token bucket of `burst` tokens refilled at `limit` per
 *   `windowMs`, stored as one number per key. Bound: in any interval of length `t`, at most
 *   `burst + t * limit / windowMs` units are admitted.
 * - `sliding-log`: exact; at most `limit` units in ANY interval of length `windowMs`. Memory is one
 *   entry per admitted unit, so `limit` is capped at {@link MAX_SLIDING_LOG_LIMIT}.
 * - `sliding-window`: the weighted two-window counter (Cloudflare's approximation). At most `limit`
 *   per clock-aligned window; it assumes the previous window's requests were spread evenly, so an
 *   arbitrary interval of length `windowMs` can see up to (but never) `2 * limit`.
 * - `fixed-window`: at most `limit` per clock-aligned window (epoch-aligned); up to `2 * limit`
 *   across a boundary.
 * - `quota`: at most `limit` per `period` (hourly, daily, weekly, monthly in UTC) counted from
 *   the key's first call or from the calendar / a billing anchor (see {@link QuotaOptions}).
 */
export type Algorithm = AlgorithmOption;

/** One limit: `limit` units per `windowMs` (or, for a quota, per `period`). */
export interface LimitOptions extends QuotaOptions {
  /** Name reported in decisions, headers and logs. State is kept per (name, algorithm, key). */
  name?: string;
  /** Counting algorithm. Default `gcra`. */
  algorithm?: Algorithm;
  /** Units (requests, or cost units) allowed per window. A positive integer. */
  limit: number;
  /**
   * Window length in milliseconds; for GCRA, `limit / windowMs` is the sustained rate. Required
   * except for a quota with a `period`.
   */
  windowMs?: number;
  /** GCRA only: bucket capacity, the units admissible at once from a full bucket. Default `limit`. */
  burst?: number;
}

/** Longest accepted window: 10 years. Keeps every microsecond timestamp exact in a double. */
export const MAX_WINDOW_MS = 10 * 365.25 * 24 * 3600 * 1000;

/** Internal, validated form of a limit. Times in integer microseconds. */
export interface Rule {
  readonly name: string;
  readonly algorithm: AlgorithmName;
  /** Namespace of this rule's state: `<algorithm>:<name>`. */
  readonly id: string;
  readonly limit: number;
  readonly windowMs: number;
  readonly windowUs: number;
  /** GCRA: capacity. Equals `limit` for the window algorithms. */
  readonly burst: number;
  /** GCRA emission interval T in µs, rounded up so rounding can only make the limit stricter. */
  readonly intervalUs: number;
  /** GCRA delay tolerance tau = T * burst, in µs. */
  readonly tauUs: number;
  /**
   * Quota rules only: the period and anchor. For the Redis script's rule spec a quota's
   * `intervalUs` is 1 for monthly periods (0 otherwise) and `tauUs` is the anchor in µs (-1 in
   * first-api-call mode): the spec keeps five fields for every algorithm.
   */
  readonly quota?: QuotaSpec;
  /** Block rules only (algorithm `block`, built by `blockRule`): how blocks escalate. */
  readonly block?: BlockSpec;
}

function positiveInteger(value: unknown, field: string, max: number): number {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new SluiceConfigError(field, `must be a number, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < 1) {
    throw new SluiceConfigError(field, `must be an integer >= 1, got ${value}`);
  }
  if (value > max) throw new SluiceConfigError(field, `must be <= ${max}, got ${value}`);
  return value;
}

/** Short, safe description of an unexpected value for error messages. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null) return 'null';
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
}

/**
 * Validate one limit and compile it. Throws {@link SluiceConfigError} naming the field.
 * @param path prefix for field names in error messages, e.g. `limits[0]`.
 */
export function compileRule(options: LimitOptions, path = ''): Rule {
  const at = (f: string) => (path ? `${path}.${f}` : f);
  if (options === null || typeof options !== 'object') {
    throw new SluiceConfigError(path || 'limit', `must be an object, got ${describe(options)}`);
  }
  const algorithmIn: unknown = options.algorithm === undefined ? 'gcra' : options.algorithm;
  const definition = typeof algorithmIn === 'string' ? findAlgorithm(algorithmIn) : undefined;
  if (definition === undefined) {
    throw new SluiceConfigError(
      at('algorithm'),
      `unknown algorithm ${describe(algorithmIn)}; expected one of ${ALGORITHM_OPTIONS.join(', ')}`,
    );
  }
  const algorithm = definition.name as AlgorithmName;
  const limit = positiveInteger(options.limit, at('limit'), definition.maxLimit);
  let quota: QuotaSpec | undefined;
  let windowMs = options.windowMs;
  if (algorithm === 'quota') {
    const q = compileQuota(options, at);
    quota = q.spec;
    windowMs = q.windowMs ?? windowMs;
  } else {
    for (const f of QUOTA_ONLY_FIELDS) {
      if (options[f] !== undefined) throw new SluiceConfigError(at(f), `only applies to algorithm "quota", not ${algorithm}`);
    }
  }
  if (typeof windowMs !== 'number' || !Number.isFinite(windowMs)) {
    throw new SluiceConfigError(at('windowMs'), `must be a finite number of milliseconds, got ${describe(windowMs)}`);
  }
  if (windowMs < 1) throw new SluiceConfigError(at('windowMs'), `must be >= 1 ms, got ${windowMs}`);
  if (windowMs > MAX_WINDOW_MS) {
    throw new SluiceConfigError(at('windowMs'), `must be <= ${MAX_WINDOW_MS} ms (10 years), got ${windowMs}`);
  }
  let burst = limit;
  if (options.burst !== undefined) {
    if (!definition.burst) {
      throw new SluiceConfigError(at('burst'), `only applies to the ${ALGORITHMS.filter((a) => a.burst).map((a) => a.name).join(', ')} algorithm, not ${algorithm}`);
    }
    burst = positiveInteger(options.burst, at('burst'), MAX_LIMIT);
  }
  const name = options.name ?? (quota?.period !== undefined ? `${limit}-${quota.period}` : `${limit}-per-${windowMs}ms`);
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
    throw new SluiceConfigError(at('name'), `must be a non-empty string of at most 200 characters`);
  }
  const windowUs = Math.round(windowMs * 1000);
  const intervalUs = Math.ceil(windowUs / limit);
  const tauUs = intervalUs * burst;
  if (tauUs > 1e15) {
    throw new SluiceConfigError(at('burst'), `burst * windowMs / limit must stay under 31 years`);
  }
  if (quota !== undefined) {
    return { name, algorithm, id: `${algorithm}:${name}`, limit, windowMs, windowUs, burst, intervalUs: quota.monthly ? 1 : 0, tauUs: quota.anchorUs ?? -1, quota };
  }
  return { name, algorithm, id: `${algorithm}:${name}`, limit, windowMs, windowUs, burst, intervalUs, tauUs };
}

/** Compile several limits; names must be unique so decisions and headers can tell them apart. */
export function compileRules(list: readonly LimitOptions[], path = 'limits'): Rule[] {
  if (!Array.isArray(list) || list.length === 0) {
    throw new SluiceConfigError(path, 'must be a non-empty array of limits');
  }
  const rules = list.map((o, i) => compileRule(o, `${path}[${i}]`));
  const seen = new Set<string>();
  rules.forEach((r, i) => {
    if (seen.has(r.name)) throw new SluiceConfigError(`${path}[${i}].name`, `duplicate name "${r.name}"`);
    seen.add(r.name);
  });
  return rules;
}
