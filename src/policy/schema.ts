/**
 * THE policy model: one zod schema for a rate-limit policy, read by every place a policy comes
 * from. The library's options (`rateLimit({ ... })`, checked by `compilePolicy`), the gateway's
 * `policies:` section, its tiers and the admin API's overrides all parse through the schemas
 * below, and `schema/sluice.schema.json` is generated from them.
 *
 * To add a policy option: add its field to {@link policyFields} (with `.describe()`, it becomes
 * the JSON Schema's documentation), its TSDoc'd property to `RateLimitPolicyOptions`
 * (src/http/options.ts), and what it compiles to in `compilePolicy` / `CompiledPolicy`. Checks
 * that span several fields (exactly one window unit, `headerName` only with `rateLimitBy: header`)
 * live in `compilePolicy`, which both the library and the gateway run.
 *
 * This module sits just above the core: it imports nothing from the HTTP layer, so the gateway
 * and the engine can both build on it.
 */
import { z } from 'zod';
import { SluiceConfigError } from '../core/errors.js';
import { describe, MAX_WINDOW_MS } from '../core/rule.js';

/** What identifies a bucket, in a config file (the library adds `function`). */
export const RATE_LIMIT_BY = ['ip', 'user', 'apiKey', 'header', 'all'] as const;
/** Rate-limit header formats. */
export const HEADER_MODES = ['retry-after', 'ietf', 'legacy', 'none'] as const;
/** Counting algorithms a policy may name (see src/core/rule.ts). */
export const POLICY_ALGORITHMS = ['gcra', 'token-bucket', 'fixed-window', 'sliding-window', 'sliding-log'] as const;

/** An RFC 9110 token: what a header name may be. */
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$/;

// `__proto__` as a record key would set the prototype of the parsed object instead of adding an entry.
/** A policy, pool, tier or consumer name. */
export const nameSchema = z.string().min(1).max(200).refine((n) => n !== '__proto__', { message: 'the name "__proto__" is reserved' });
/** A valid HTTP header name. */
export const headerNameSchema = z.string().regex(HEADER_NAME, 'must be a valid HTTP header name');

/** A window, in minutes or seconds (fractions allowed); `compilePolicy` checks that at most one is given. */
export const windowFields = {
  timeWindowMinutes: z.number().positive().optional(),
  timeWindowSeconds: z.number().positive().optional(),
};

/** Which proxies' forwarding headers to believe: off, a hop count, or proxy CIDRs (checked by compileTrustProxy). */
export const trustProxySchema = z.union([z.literal(false), z.number().int().min(0).max(32), z.array(z.string())]);

/** Failed-authentication protection: count failures, refuse the identifier for a penalty period. */
export const failedAuthSchema = z
  .object({
    countStatuses: z
      .array(z.number())
      // One refinement for the whole list, so an error names `countStatuses` as the option to fix.
      .refine((s) => s.length > 0 && s.every((v) => Number.isInteger(v) && v >= 100 && v <= 599), { message: 'must be a non-empty list of HTTP statuses (100-599)' })
      .meta({ items: { type: 'integer', minimum: 100, maximum: 599 }, minItems: 1 })
      .optional(),
    threshold: z.number().int().min(1).describe('Failures tolerated within the window; the threshold-th starts the penalty.'),
    windowMinutes: z.number().positive().optional(),
    windowSeconds: z.number().positive().optional(),
    penaltyMinutes: z.number().positive().optional(),
    penaltySeconds: z.number().positive().optional(),
  })
  .strict();

/** Longer blocks for repeat offenders (fail2ban's bantime.increment); `compilePolicy` checks it against the block duration. */
export const blockEscalationSchema = z
  .object({
    multiplier: z.number().min(1).optional().describe('Each block within resetAfterMinutes of the previous one lasts this many times longer (default 2).'),
    maxBlockMinutes: z.number().positive().optional().describe('The longest block, in minutes (default 1440, or the block duration if longer).'),
    resetAfterMinutes: z.number().positive().optional().describe('After this many minutes with no new block, the next block is the first again (default 1440).'),
  })
  .strict();

/** A compound key: `[ip, "header:x-tenant"]` (the part names are checked when the policy compiles). */
export const keyPartsSchema = z.array(z.string().min(1).max(120)).min(1).max(10);
/** A quota's allowance per period (Zuplo's `allowances`). */
export const allowancesSchema = z.object({ requests: z.number().int().min(1).max(1e12).describe('Requests allowed per period.') }).strict();
/** Response statuses: `"200-399"`, `"200-299, 404"`, `[200, 201]` (ranges checked when the policy compiles). */
const statusListSchema = z.union([z.string(), z.number().int(), z.array(z.union([z.string(), z.number().int()])).min(1)]);
/** An instant in the past, ISO 8601 (a billing anchor). */
export const pastInstantSchema = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}/, 'must be an ISO 8601 date, e.g. 2026-11-15T00:00:00Z')
  .refine((v) => Number.isFinite(Date.parse(v)), { message: 'is not a valid date' })
  .refine((v) => Date.parse(v) <= Date.now(), { message: 'must not be in the future' });
const byKey = z.union([z.enum(RATE_LIMIT_BY), keyPartsSchema]);

/**
 * The fields of a policy that can be written in a file (every option except the code-only ones).
 * New policy options go here.
 */
export const policyFields = {
  requestsAllowed: z.number().int().min(1).optional().describe('Requests allowed per window (required unless failedAuth is set).'),
  ...windowFields,
  rateLimitBy: byKey
    .default('ip')
    .describe('ip | user (authenticated consumer sub) | apiKey (the presented key) | header (headerName) | all (one bucket), or a list of key parts (a compound key, docs/quotas.md).'),
  headerName: headerNameSchema.optional(),
  period: z.enum(['hourly', 'daily', 'weekly', 'monthly']).optional().describe('Makes this policy a quota: an allowance per period (UTC) instead of requestsAllowed per window.'),
  allowances: allowancesSchema.optional().describe('Quota: what each period allows, e.g. { requests: 1000 }.'),
  quotaBy: byKey.optional().describe("Zuplo's name of rateLimitBy for a quota (give one of the two)."),
  quotaAnchorMode: z.enum(['first-api-call', 'calendar']).optional().describe("Quota: periods from each key's first call (default), or from the calendar / a billing anchor."),
  anchor: pastInstantSchema.optional().describe('Quota, calendar mode: the instant periods are counted from (a consumer billingAnchor overrides it).'),
  quotaOnStatusCodes: statusListSchema.optional().describe('Count only responses with these statuses, e.g. "200-399" (charged when the response completes).'),
  countOnStatusCodes: statusListSchema.optional().describe('Same as quotaOnStatusCodes, for any policy.'),
  skipSuccessfulRequests: z.boolean().optional().describe('Do not count responses below 400.'),
  skipFailedRequests: z.boolean().optional().describe('Do not count responses of 400 and above.'),
  blockDurationMinutes: z.number().positive().optional().describe('Penalty box: once this policy refuses a key, the key stays refused this long.'),
  blockDurationSeconds: z.number().positive().optional().describe('Same as blockDurationMinutes, in seconds.'),
  blockEscalation: blockEscalationSchema.optional().describe('Penalty box: each new block of a key within resetAfterMinutes of its last one lasts multiplier times longer, up to maxBlockMinutes.'),
  statusCode: z.union([z.literal(429), z.literal(503)]).optional().describe('Status of a refusal by this policy (default 429).'),
  detail: z.string().min(1).max(500).optional().describe('Problem Details `detail` of a refusal by this policy.'),
  headers: z.record(headerNameSchema, z.string().max(1000)).optional().describe('Extra headers on a refusal by this policy.'),
  burst: z.number().int().min(1).optional(),
  algorithm: z.enum(POLICY_ALGORITHMS).optional(),
  headerMode: z.enum(HEADER_MODES).optional(),
  mode: z.enum(['strict', 'async']).optional(),
  onStoreError: z
    .enum(['allow', 'deny', 'local'])
    .optional()
    .describe('When the store fails: allow (default), deny (503), or local (this instance enforces limit / store.expectedInstances from memory until Redis answers).'),
  throwOnFailure: z.boolean().optional(),
  shadow: z.boolean().optional(),
  allowList: z.array(z.string()).optional().describe('IPs/CIDRs that bypass this policy.'),
  denyList: z.array(z.string()).optional().describe('IPs/CIDRs refused with 403.'),
  pool: nameSchema.optional().describe('Counter shared by every policy naming the same pool (default: the policy name).'),
  trustProxy: trustProxySchema.optional(),
  forwardedHeader: z.enum(['x-forwarded-for', 'forwarded']).optional(),
  ipv6Subnet: z.number().int().min(1).max(128).optional(),
  onUnidentified: z.enum(['ip', 'deny', 'allow']).optional(),
  failedAuth: failedAuthSchema.optional(),
};

/** One policy as a config file writes it. */
export const policySchema = z.object(policyFields).strict();

const isFunction = (v: unknown): boolean => typeof v === 'function';
const matcher = z.union([z.array(z.string()), z.custom<(...args: never[]) => unknown>(isFunction, 'must be a function')]);

/**
 * One policy as the library takes it: the file form plus the code-only options (`name`, an
 * `identifier` function for `rateLimitBy: function`, predicates for allow/deny lists, a
 * comma-separated `trustProxy` string). Nothing is defaulted here: `compilePolicy` does that.
 */
export const policyOptionsSchema = z
  .object({
    ...policyFields,
    name: z.string().optional(),
    apiKeyHeader: headerNameSchema.optional(),
    // Compound-key parts are checked one by one by compileCompoundKey, which names the bad entry.
    rateLimitBy: z.union([z.enum([...RATE_LIMIT_BY, 'function']), z.array(z.unknown())]).optional(),
    quotaBy: z.union([z.enum([...RATE_LIMIT_BY, 'function']), z.array(z.unknown())]).optional(),
    // The library also takes a Date or epoch ms; compileQuotaRule checks it is a past instant.
    anchor: z.union([z.string(), z.number(), z.date()]).optional(),
    handler: z.custom<(...args: never[]) => unknown>(isFunction, 'must be a function').optional(),
    identifier: z.custom<(...args: never[]) => unknown>(isFunction, 'must be a function').optional(),
    allowList: matcher.optional(),
    denyList: matcher.optional(),
    // Deep checks (CIDR syntax, hop range, `true`) are compileTrustProxy's, with messages that say why.
    trustProxy: z.unknown().optional(),
  })
  .strict();

/**
 * The window checks of `windowMsOf` (one unit only, 1 ms to 10 years) as schema issues, so an
 * optional window in a tier or an override is refused by the schema itself with its field path
 * (`tiers.pro.timeWindowSeconds`): `sluice check`, the gateway and the admin API say the same.
 */
function checkWindow(o: { timeWindowMinutes?: number; timeWindowSeconds?: number }, ctx: z.RefinementCtx): void {
  if (o.timeWindowMinutes === undefined && o.timeWindowSeconds === undefined) return;
  try {
    windowMsOf(o.timeWindowMinutes, o.timeWindowSeconds, 'timeWindow');
  } catch (err) {
    if (!(err instanceof SluiceConfigError)) throw err;
    ctx.addIssue({ code: 'custom', path: [err.field], message: err.reason });
  }
}

/** Limits that replace a policy's own for some consumers: a tier's per-policy entry (`allowances` for a quota). */
export const limitsSchema = z
  .object({ requestsAllowed: z.number().int().min(1).optional(), ...windowFields, allowances: allowancesSchema.optional() })
  .strict()
  .refine((l) => (l.requestsAllowed === undefined) !== (l.allowances === undefined), { message: 'give requestsAllowed (a rate limit) or allowances (a quota)' })
  .superRefine(checkWindow);

/**
 * A runtime override set through the admin API: the same fields and rules as a tier's per-policy
 * limits (an optional window in minutes or seconds of at least 1 ms), with a ceiling (the core's
 * largest limit) since it arrives over the network.
 */
export const overrideSchema = z
  .object({ requestsAllowed: z.number().int().min(1).max(1e12), ...windowFields })
  .strict()
  .superRefine(checkWindow);

/** A tier: limits for every per-consumer policy, and per-policy values. */
export const tierSchema = z
  .object({
    requestsAllowed: z.number().int().min(1).optional(),
    ...windowFields,
    allowances: allowancesSchema.optional().describe("This tier's allowance for every per-consumer quota."),
    policies: z.record(nameSchema, limitsSchema).optional().describe('Per-policy limits for this tier (policy name -> limits).'),
  })
  .strict()
  .superRefine(checkWindow);

export type PolicyConfig = z.infer<typeof policySchema>;
export type TierConfig = z.infer<typeof tierSchema>;
export type LimitsConfig = z.infer<typeof limitsSchema>;

function positive(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new SluiceConfigError(field, `must be a positive number, got ${describe(value)}`);
  }
  return value;
}

/**
 * A window from minutes or seconds (exactly one may be given), in ms. `field` is the stem
 * (`timeWindow`, `failedAuth.penalty`); errors name `<field>Minutes` or `<field>Seconds`.
 */
export function windowMsOf(minutes: unknown, seconds: unknown, field: string, fallbackMs?: number): number {
  if (minutes !== undefined && seconds !== undefined) {
    throw new SluiceConfigError(`${field}Seconds`, `give either ${field}Minutes or ${field}Seconds, not both`);
  }
  let ms: number;
  if (minutes !== undefined) ms = positive(minutes, `${field}Minutes`) * 60_000;
  else if (seconds !== undefined) ms = positive(seconds, `${field}Seconds`) * 1000;
  else if (fallbackMs !== undefined) return fallbackMs;
  else throw new SluiceConfigError(`${field}Minutes`, `is required (or ${field}Seconds)`);
  if (ms < 1 || ms > MAX_WINDOW_MS) {
    throw new SluiceConfigError(minutes !== undefined ? `${field}Minutes` : `${field}Seconds`, `must be between 1 ms and 10 years, got ${ms} ms`);
  }
  return ms;
}

/** Dotted path as operators read it: `routes[2].upstream`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out || '(root)';
}

/**
 * The first issue of a failed parse as a field path and a reason. An unknown key is named in the
 * path (`p.requestAllowed`), so the error points at the misspelt option itself.
 */
export function firstIssue(error: z.ZodError): { path: string; reason: string } {
  const issue = error.issues[0] as z.core.$ZodIssue;
  if (issue.code === 'unrecognized_keys') {
    return { path: formatPath([...issue.path, issue.keys[0] as string]), reason: 'unknown option (check the spelling)' };
  }
  return { path: formatPath(issue.path), reason: issue.message };
}
