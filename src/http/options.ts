/**
 * Rate-limit policy options, named after Zuplo's `rate-limit-inbound` policy so its users feel at
 * home, plus what Zuplo lacks (burst, algorithm, IETF headers, pools, trust-proxy, failed-auth
 * protection). {@link compilePolicy} validates everything at construction: a bad option throws
 * {@link SluiceConfigError} naming it, never at the first request.
 */
import { SluiceConfigError } from '../core/errors.js';
import { compileRule, describe, type Algorithm, type Rule } from '../core/rule.js';
import type { z } from 'zod';
import { firstIssue, HEADER_MODES, policyOptionsSchema, RATE_LIMIT_BY, windowMsOf } from '../policy/schema.js';
import { compileTrustProxy, type ForwardedHeader, type TrustProxy, type TrustRule } from './client-ip.js';
import { compileBlock, type BlockOptions } from './block.js';
import { compileCompoundKey, type CompoundKey, type KeyPart } from './compound-key.js';
import { compileCountByResponse, type CountByResponseOptions, type StatusFilter } from './count-by-response.js';
import { compileRefusal, type CompiledRefusal, type RefusalOptions } from './refusal.js';
import { compileQuotaRule, QUOTA_POLICY_FIELDS, type QuotaPolicyOptions } from './quota.js';
import type { HttpRequestInfo } from './request.js';

/** What identifies a bucket. */
export type RateLimitBy = (typeof RATE_LIMIT_BY)[number] | 'function';

/** Which rate-limit headers to send. */
export type HeaderMode = (typeof HEADER_MODES)[number];

/**
 * What an `identifier` function returns: the bucket key and, optionally, limits for this caller
 * (per-tier limits). `undefined` / `null` means "do not limit this request".
 */
export interface IdentifierResult {
  /** The bucket key (any string; long or binary keys are hashed). */
  key: string;
  /** Overrides the policy's `requestsAllowed` for this request. */
  requestsAllowed?: number;
  /** Overrides the policy's window for this request (minutes, fractions allowed). */
  timeWindowMinutes?: number;
  /**
   * Quota policies: this caller's own billing anchor (epoch ms, not in the future): its periods
   * are counted from it (calendar mode) instead of the policy's anchor.
   */
  quotaAnchor?: number;
}

/** A custom identifier: Zuplo's `CustomRateLimitFunction`, given the request and the policy name. */
export type IdentifierFunction = (
  request: HttpRequestInfo,
  policyName: string,
) => IdentifierResult | undefined | null | Promise<IdentifierResult | undefined | null>;

/**
 * The rule for a request the limiter cannot identify (`rateLimitBy: user` with no user, `apiKey`
 * with no key, `header` with the header missing, or no socket address):
 * - `ip` (default): limit it by client IP instead, under the same policy (keys `ip:` never
 *   collide with user keys). Never a shared anonymous bucket.
 * - `deny`: refuse it (401 for `user`/`apiKey`, 400 for `header`/`ip`).
 * - `allow`: let it through unlimited by this policy.
 */
export type OnUnidentified = 'ip' | 'deny' | 'allow';

/** Addresses/CIDRs (matched on the client IP) or a predicate on the request. */
export type RequestMatcher = readonly string[] | ((request: HttpRequestInfo) => boolean);

/**
 * Failed-authentication protection: the policy counts only responses whose status is in
 * `countStatuses` and, after `threshold` of them within the window, refuses the identifier with
 * 429 for the penalty period. It consumes nothing for other responses.
 */
export interface FailedAuthOptions {
  /** Statuses that count as a failure. Default `[401]`. */
  countStatuses?: readonly number[];
  /** Failures tolerated within the window; the `threshold`-th failure starts the penalty. */
  threshold: number;
  /** Window in which failures are counted. Default 15 minutes. */
  windowMinutes?: number;
  /** Same as `windowMinutes`, in seconds. */
  windowSeconds?: number;
  /** How long the identifier is refused after the threshold. Default 15 minutes. */
  penaltyMinutes?: number;
  /** Same as `penaltyMinutes`, in seconds. */
  penaltySeconds?: number;
}

/**
 * Options of one rate-limit policy. With `period` and `allowances` (Zuplo's `quota-inbound`) the
 * policy is a quota: an allowance per hourly / daily / weekly / monthly period instead of
 * `requestsAllowed` per window.
 */
export interface RateLimitPolicyOptions extends QuotaPolicyOptions, CountByResponseOptions, BlockOptions, RefusalOptions {
  /** Policy name: counters are kept per (name or `pool`, key); shown in headers and logs. */
  name?: string;
  /** Requests allowed per window. Required unless `failedAuth` is set. */
  requestsAllowed?: number;
  /** Window in minutes (fractions allowed: 0.5 = 30 s). Give this or `timeWindowSeconds`. */
  timeWindowMinutes?: number;
  /** Window in seconds. */
  timeWindowSeconds?: number;
  /**
   * What identifies a bucket. Default `ip`. A list of parts is a compound key (e.g. `['ip',
   * 'header:x-tenant']`, `['user', 'route']`; see compound-key.ts).
   */
  rateLimitBy?: RateLimitBy | readonly KeyPart[];
  /** Zuplo's name of `rateLimitBy` on a quota. */
  quotaBy?: RateLimitBy | readonly KeyPart[];
  /** Header whose value is the key, for `rateLimitBy: header` (case-insensitive). */
  headerName?: string;
  /** Header carrying the API key when the request has no `apiKey` from an auth step. Default `x-api-key`. */
  apiKeyHeader?: string;
  /** The custom identifier, for `rateLimitBy: function` (may be async). */
  identifier?: IdentifierFunction;
  /** GCRA only: requests admissible at once from a full bucket. Default `requestsAllowed`. */
  burst?: number;
  /** Counting algorithm (see the core). Default `gcra`. */
  algorithm?: Algorithm;
  /** Which headers to send. Default `retry-after` (Zuplo's). */
  headerMode?: HeaderMode;
  /**
   * `strict` (default): decide before the request proceeds. `async`: let it proceed and count in
   * the background; a key found over its limit is refused locally until its retry time. Over-admits
   * at most the requests of one key that arrive while one store round trip is in flight.
   */
  mode?: 'strict' | 'async';
  /**
   * When the store fails: `allow` (default, fail open, logged), `deny` (503 problem+json), or
   * `local`: decide from this process's own memory store at a share of the limit until the store
   * answers again (the share is the store's: see `FallbackStore`'s `expectedInstances`; with a
   * plain store the engine wraps it, share 1).
   */
  onStoreError?: 'allow' | 'deny' | 'local';
  /** Zuplo's name for `onStoreError: 'deny'`. */
  throwOnFailure?: boolean;
  /** Dry run: count and log what would be refused, never refuse, send no rate-limit headers. */
  shadow?: boolean;
  /** Requests matching this bypass the policy. */
  allowList?: RequestMatcher;
  /** Requests matching this are refused with 403 problem+json. */
  denyList?: RequestMatcher;
  /**
   * Counter name shared by every policy (on any route) that uses the same pool: they draw from
   * one limit per key. Default: the policy name (Zuplo: same policy name = same counter).
   */
  pool?: string;
  /** Which proxies' forwarding headers to believe. Default `false` (socket address only). */
  trustProxy?: TrustProxy;
  /** The forwarding header to read when `trustProxy` is set. Default `x-forwarded-for`. */
  forwardedHeader?: ForwardedHeader;
  /** IPv6 clients share a bucket per this prefix length. Default 64. */
  ipv6Subnet?: number;
  /** Rule for unidentifiable requests. Default `ip`. */
  onUnidentified?: OnUnidentified;
  /** Make this a failed-authentication policy (see {@link FailedAuthOptions}). */
  failedAuth?: FailedAuthOptions;
}

/** A policy after validation. Internal shape, read by the engine. */
export interface CompiledPolicy {
  readonly name: string;
  readonly pool: string;
  /** `compound` when `rateLimitBy` was a list of parts (see `compound`). */
  readonly rateLimitBy: RateLimitBy | 'compound';
  /** The compound key, when `rateLimitBy` was a list of parts. */
  readonly compound: CompoundKey | undefined;
  readonly headerName: string | undefined;
  readonly apiKeyHeader: string;
  readonly identifier: IdentifierFunction | undefined;
  /** The static rule (requestsAllowed per window); for failed-auth, the failure-counting rule. */
  readonly rule: Rule;
  readonly algorithm: Algorithm;
  readonly burst: number | undefined;
  readonly headerMode: HeaderMode;
  readonly mode: 'strict' | 'async';
  readonly onStoreError: 'allow' | 'deny' | 'local';
  readonly shadow: boolean;
  readonly allow: ((req: HttpRequestInfo, ip: () => string | undefined) => boolean) | undefined;
  readonly deny: ((req: HttpRequestInfo, ip: () => string | undefined) => boolean) | undefined;
  readonly trust: TrustRule;
  readonly forwardedHeader: ForwardedHeader;
  readonly ipv6Subnet: number;
  readonly onUnidentified: OnUnidentified;
  readonly failedAuth:
    | { readonly countStatuses: ReadonlySet<number>; readonly penaltyRule: Rule; readonly threshold: number }
    | undefined;
  /** Quota policies: the quota options (per-caller allowances and anchors are compiled from them). */
  readonly quota: QuotaPolicyOptions | undefined;
  /** Count-by-response policies: the statuses charged when the response completes. */
  readonly countOn: StatusFilter | undefined;
  /** Block duration: the rule holding this policy's blocks (see block.ts). */
  readonly block: Rule | undefined;
  /** Custom refusal (status, detail, headers, handler), undefined for the defaults. */
  readonly refusal: CompiledRefusal | undefined;
}

/** A window from minutes or seconds (exactly one may be given), in ms. */
export { windowMsOf };

// The documented options and the schema name the same fields: adding one to either without the
// other fails to compile here.
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
const optionsMatchSchema: SameKeys<RateLimitPolicyOptions, z.input<typeof policyOptionsSchema>> = true;
void optionsMatchSchema;

/** Every object `compilePolicy` returned: the engine takes these as they are, without compiling again. */
const compiled = new WeakSet<object>();

/** Was `value` made by {@link compilePolicy}? */
export function isCompiledPolicy(value: unknown): value is CompiledPolicy {
  return typeof value === 'object' && value !== null && compiled.has(value);
}

/**
 * The policy's counting rule with other limits (a tier, an override, an identifier's result). Same
 * name, hence same counter, as the static rule: a caller moving between tiers keeps its state.
 */
export function ruleWithLimits(policy: CompiledPolicy, limit: number, windowMs: number, field = `${policy.name}.limits`): Rule {
  if (limit === policy.rule.limit && windowMs === policy.rule.windowMs) return policy.rule;
  return compileRule({ name: policy.pool, algorithm: policy.algorithm, limit, windowMs, ...(policy.burst !== undefined ? { burst: Math.max(policy.burst, 1) } : {}) }, field);
}

/** Compile an allow/deny list. CIDR lists match the client IP (resolved with `trustProxy`). */
function compileMatcher(value: unknown, field: string): CompiledPolicy['allow'] {
  if (value === undefined) return undefined;
  if (typeof value === 'function') return (req) => (value as (r: HttpRequestInfo) => boolean)(req) === true;
  if (!Array.isArray(value)) throw new SluiceConfigError(field, `must be a list of IPs/CIDRs or a function, got ${describe(value)}`);
  if (value.length === 0) return undefined;
  const rule = compileTrustProxy(value, field);
  if (!('trusted' in rule)) throw new SluiceConfigError(field, 'must be a list of IPs/CIDRs');
  const test = rule.trusted;
  return (_req, ip) => {
    const a = ip();
    return a !== undefined && test(a);
  };
}

/** A failed-auth policy has its own penalty: a block duration there is a mistake. */
function noBlock(o: Record<string, unknown>, at: (f: string) => string): undefined {
  for (const k of ['blockDurationMinutes', 'blockDurationSeconds', 'blockEscalation']) {
    if (o[k] !== undefined) throw new SluiceConfigError(at(k), 'does not apply to a failedAuth policy (it has failedAuth.penaltyMinutes)');
  }
  return undefined;
}

/**
 * Validate one policy and compile it. Throws {@link SluiceConfigError} whose `field` is
 * `<name>.<option>` so a config file with many policies points at the right one.
 */
export function compilePolicy(options: RateLimitPolicyOptions, name: string, route?: string): CompiledPolicy {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
    throw new SluiceConfigError('name', `a policy needs a non-empty name of at most 200 characters, got ${describe(name)}`);
  }
  const at = (f: string) => `${name}.${f}`;
  if (options === null || typeof options !== 'object') throw new SluiceConfigError(name, 'policy options must be an object');
  // Field types, ranges and spelling: the one policy schema (src/policy/schema.ts).
  const parsed = policyOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const { path, reason } = firstIssue(parsed.error);
    throw new SluiceConfigError(at(path), reason);
  }
  const o = options as Record<string, unknown>;
  /** Run `fn`; a config error it throws is re-homed under this policy's name. */
  const wrap = <T>(fn: () => T, rename?: string): T => {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof SluiceConfigError)) throw err;
      // The core names its fields `limit`/`windowMs`; report the policy's own option names.
      if (rename !== undefined && err.field === 'limit') throw new SluiceConfigError(at(rename), err.reason);
      throw err.under(name);
    }
  };

  if (o.rateLimitBy !== undefined && o.quotaBy !== undefined) throw new SluiceConfigError(at('quotaBy'), 'give either rateLimitBy or quotaBy, not both');
  const byField = o.quotaBy !== undefined ? 'quotaBy' : 'rateLimitBy';
  const parts = Array.isArray(o[byField]) ? (o[byField] as unknown[]) : undefined;
  const rateLimitBy: RateLimitBy | 'compound' = parts !== undefined ? 'compound' : ((o[byField] as RateLimitBy | undefined) ?? 'ip');
  const headerMode: HeaderMode = options.headerMode ?? 'retry-after';
  const mode = options.mode ?? 'strict';
  const throwOnFailure = options.throwOnFailure ?? false;
  const onStoreError = options.onStoreError ?? (throwOnFailure ? 'deny' : 'allow');
  if (throwOnFailure && onStoreError !== 'deny') {
    throw new SluiceConfigError(at('throwOnFailure'), `contradicts onStoreError: "${onStoreError}"`);
  }
  const shadow = options.shadow ?? false;
  const onUnidentified = options.onUnidentified ?? 'ip';
  const forwardedHeader = options.forwardedHeader ?? 'x-forwarded-for';

  let headerName: string | undefined;
  if (rateLimitBy === 'header') {
    if (typeof o.headerName !== 'string') {
      throw new SluiceConfigError(at('headerName'), `rateLimitBy "header" needs a valid header name, got ${describe(o.headerName)}`);
    }
    headerName = o.headerName.toLowerCase();
  } else if (o.headerName !== undefined) {
    throw new SluiceConfigError(at('headerName'), `only applies to rateLimitBy "header", not "${rateLimitBy}"`);
  }
  let apiKeyHeader = 'x-api-key';
  if (options.apiKeyHeader !== undefined) apiKeyHeader = options.apiKeyHeader.toLowerCase();
  let identifier: IdentifierFunction | undefined;
  if (rateLimitBy === 'function') {
    if (typeof o.identifier !== 'function') {
      throw new SluiceConfigError(at('identifier'), `rateLimitBy "function" needs an identifier function, got ${describe(o.identifier)}`);
    }
    identifier = o.identifier as IdentifierFunction;
  } else if (o.identifier !== undefined) {
    throw new SluiceConfigError(at('identifier'), `only applies to rateLimitBy "function", not "${rateLimitBy}"`);
  }

  const pool = options.pool ?? name;
  const trust = wrap(() => compileTrustProxy(o.trustProxy, at('trustProxy')));
  const ipv6Subnet = options.ipv6Subnet ?? 64;
  const compound = parts === undefined ? undefined : compileCompoundKey(parts, at(byField), { trust, forwardedHeader, ipv6Subnet, apiKeyHeader, route });
  const allow = compileMatcher(o.allowList, at('allowList'));
  const deny = compileMatcher(o.denyList, at('denyList'));
  const algorithm = (o.algorithm ?? 'gcra') as Algorithm;

  let rule: Rule;
  let failedAuth: CompiledPolicy['failedAuth'];
  let quota: QuotaPolicyOptions | undefined;
  const countOn = compileCountByResponse(o as CountByResponseOptions, at);
  if (o.period !== undefined) {
    for (const k of ['requestsAllowed', 'timeWindowMinutes', 'timeWindowSeconds', 'burst', 'algorithm', 'failedAuth']) {
      if (o[k] !== undefined) throw new SluiceConfigError(at(k), 'does not apply to a quota (a quota has period and allowances)');
    }
    quota = { period: o.period as QuotaPolicyOptions['period'] } as QuotaPolicyOptions;
    for (const k of QUOTA_POLICY_FIELDS) if (o[k] !== undefined) (quota as Record<string, unknown>)[k] = o[k];
    rule = compileQuotaRule(quota, pool, at);
  } else if (o.allowances !== undefined || o.quotaAnchorMode !== undefined || o.anchor !== undefined) {
    const k = o.allowances !== undefined ? 'allowances' : o.quotaAnchorMode !== undefined ? 'quotaAnchorMode' : 'anchor';
    throw new SluiceConfigError(at(k), 'only applies to a quota: add period (hourly, daily, weekly or monthly)');
  } else if (o.failedAuth !== undefined) {
    if (countOn !== undefined) throw new SluiceConfigError(at('failedAuth'), 'counts by response already (failedAuth.countStatuses); drop the other status option');
    const f = o.failedAuth as Record<string, unknown>;
    for (const k of ['requestsAllowed', 'timeWindowMinutes', 'timeWindowSeconds', 'burst', 'mode', 'shadow']) {
      if (o[k] !== undefined) throw new SluiceConfigError(at(k), 'does not apply to a failedAuth policy (set failedAuth.threshold and its window instead)');
    }
    const statuses = f.countStatuses ?? [401];
    const windowMs = wrap(() => windowMsOf(f.windowMinutes, f.windowSeconds, at('failedAuth.window'), 15 * 60_000));
    const penaltyMs = wrap(() => windowMsOf(f.penaltyMinutes, f.penaltySeconds, at('failedAuth.penalty'), 15 * 60_000));
    rule = wrap(() => compileRule({ name: `${pool}:failures`, algorithm: o.algorithm === undefined ? 'sliding-window' : algorithm, limit: f.threshold as number, windowMs }), 'failedAuth.threshold');
    // One unit per penalty period: consuming it blocks the key for exactly `penaltyMs` (GCRA, burst 1).
    const penaltyRule = compileRule({ name: `${pool}:penalty`, algorithm: 'gcra', limit: 1, windowMs: penaltyMs, burst: 1 });
    failedAuth = { countStatuses: new Set(statuses as number[]), penaltyRule, threshold: rule.limit };
  } else {
    if (o.requestsAllowed === undefined) throw new SluiceConfigError(at('requestsAllowed'), 'is required');
    const windowMs = wrap(() => windowMsOf(o.timeWindowMinutes, o.timeWindowSeconds, at('timeWindow')));
    rule = wrap(() => compileRule({ name: pool, algorithm, limit: o.requestsAllowed as number, windowMs, ...(o.burst !== undefined ? { burst: o.burst as number } : {}) }), 'requestsAllowed');
  }
  const out: CompiledPolicy = {
    name,
    pool,
    rateLimitBy,
    compound,
    headerName,
    apiKeyHeader,
    identifier,
    rule,
    algorithm: quota !== undefined ? 'quota' : algorithm,
    burst: o.burst as number | undefined,
    headerMode,
    mode,
    onStoreError,
    shadow,
    allow,
    deny,
    trust,
    forwardedHeader,
    ipv6Subnet,
    onUnidentified,
    failedAuth,
    quota,
    countOn,
    refusal: compileRefusal(o as RefusalOptions, at),
    block: failedAuth === undefined ? compileBlock(o as BlockOptions, pool, at) : noBlock(o, at),
  };
  compiled.add(out);
  return out;
}
