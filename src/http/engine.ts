/**
 * The policy engine: the one framework-neutral core every adapter and the gateway call.
 * `check(request)` runs a route's policies in order and answers with what to do and which headers
 * to send; `complete(status)` reports the response status afterwards (failed-auth counting).
 *
 * Several policies on one route: a request refused by one consumes from none.
 * - Policies whose keys coincide (e.g. a per-second and a per-hour limit both by user) are decided
 *   in ONE atomic store call over all their rules (the core commits only if every rule admits).
 * - Policies with different keys are first peeked (no writes) together; if any would refuse, the
 *   request is refused and nothing is consumed. Otherwise they are consumed in configuration
 *   order. Only a race between the peek and the consume (another request taking the last unit in
 *   between) can then refuse at a later policy; the units already taken from earlier policies are
 *   not refunded. Put the longest window first (Zuplo's advice) so such a race costs the least.
 * - `shadow` policies are decided on their own and never refuse; `async` policies are counted in
 *   the background; failed-auth policies only peek their penalty here and count in `complete`.
 */
import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from '../core/clock.js';
import type { Decision } from '../core/decision.js';
import { SluiceConfigError, StoreError } from '../core/errors.js';
import { describe, type Rule } from '../core/rule.js';
import type { Store } from '../core/store.js';
import { MemoryStore } from '../stores/memory-store.js';
import { clientIp } from './client-ip.js';
import { AsyncBlocks } from './async-mode.js';
import { decideStrict, decideSyncGroup, headerInput, sameKey, type Pending, type StrictOutcome } from './decide.js';
import { createDeciders, type DecideNow } from './deciders.js';
import { penaltyStatus, recordOutcome } from './failed-auth.js';
import { writeRateLimitHeaders, type HeaderInput } from './headers.js';
import { FallbackStore, summarizeHealthEvent, type StoreHealthEvent } from '../stores/fallback-store.js';
import type { DecideFn } from './failed-auth.js';
import { identify, ipKey, type Identity } from './identify.js';
import { checkCostFits, compilePolicy, isCompiledPolicy, ruleWithLimits, windowMsOf, type CompiledPolicy, type IdentifierResult, type RateLimitPolicyOptions } from './options.js';
import { DETAILS, problem, problemBody, PROBLEM_CONTENT_TYPE, requestIdOf } from './problem.js';
import { blockStatus, startBlock } from './block.js';
import { applyHandler } from './refusal.js';
import { compileQuotaRule, quotaExhaustedDetail } from './quota.js';
import { compileCost, responseExtra, type CompiledCost, type CostOption, type HttpResponseInfo, type RequestCost } from './cost.js';
import { pathOf, type HttpRequestInfo } from './request.js';
import type { PolicyEvent, PolicyLogger, PolicyReason, PolicyResult, PolicyStats } from './result.js';

export type { PolicyEvent, PolicyLogger, PolicyReason, PolicyResult, PolicyStats } from './result.js';

/** Options of {@link createPolicyEngine}. */
export interface PolicyEngineOptions {
  /** The route's policies, evaluated in order: options, or policies already compiled by `compilePolicy` (shared as they are). */
  policies: ReadonlyArray<(RateLimitPolicyOptions & { name: string }) | CompiledPolicy>;
  /** Where counters live. Default: a new in-memory store (closed by `close()`). */
  store?: Store;
  /** `trace.buildId` of problem bodies. Default: `$SLUICE_BUILD_ID`, else a UUID fixed per engine. */
  buildId?: string;
  /** Wall clock (epoch ms) for timestamps and the default store. */
  clock?: Clock;
  /** Where shadow refusals, store errors and identifier errors are logged. Default: stderr JSON lines; `false` for none. */
  logger?: PolicyLogger | false;
  /** Called for every {@link PolicyEvent} (metrics, alerts). Must not throw. */
  onEvent?: (event: PolicyEvent) => void;
  /** A label of the route these policies guard: the `route` part of compound keys. */
  route?: string;
  /**
   * The route's cost: applies to every policy of the route that gives no `cost` of its own (a
   * policy's own cost wins; failed-auth policies always count one failure). Same forms as a
   * policy's `cost`.
   */
  cost?: CostOption;
}

/** A compiled set of policies bound to a store. */
export interface PolicyEngine {
  /** Decide a request. Never rejects: failures follow each policy's `onStoreError`. */
  check(request: HttpRequestInfo): Promise<PolicyResult>;
  /**
   * Same as `check`, but returns the result directly when it could be decided synchronously
   * (memory store, no asynchronous identifier): adapters use it to skip a promise per request.
   */
  evaluate(request: HttpRequestInfo): PolicyResult | Promise<PolicyResult>;
  readonly policies: readonly CompiledPolicy[];
  readonly store: Store;
  readonly buildId: string;
  /** True when some policy needs `complete(status)` (adapters skip the response hook otherwise). */
  readonly needsCompletion: boolean;
  readonly stats: Readonly<PolicyStats>;
  /** Close the store if the engine created it. */
  close(): Promise<void>;
}

/** Per-request state shared by the helpers that build a result. */
interface RequestContext {
  readonly request: HttpRequestInfo;
  readonly requestId: string;
  readonly headers: Record<string, string>;
  readonly path: string;
  shadowLimited: boolean;
  /** Policies whose cost is read from the response: the reserve is decided now, the rest charged in complete(). */
  costFromResponse?: [Pending, ResponseCost][];
}

/** The context of a request on the plain path: its path is worked out only if a refusal or an event needs it. */
class PlainContext implements RequestContext {
  readonly headers: Record<string, string>;
  shadowLimited = false;
  constructor(
    readonly request: HttpRequestInfo,
    readonly requestId: string,
  ) {
    this.headers = { 'x-request-id': requestId };
  }
  get path(): string {
    return pathOf(this.request.path);
  }
}

const defaultLogger: PolicyLogger = {
  warn: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: 'warn', msg, ...obj })}\n`),
};

/** Log a store health event of an engine-made {@link FallbackStore} (the switch to local and back). */
function logHealth(logger: PolicyLogger | undefined, e: StoreHealthEvent): void {
  if (logger === undefined) return;
  const h = summarizeHealthEvent(e);
  logger.warn(h.fields, h.msg);
}

const MAX_DYNAMIC_RULES = 1000;

/** A cost read from the response. */
type ResponseCost = Extract<CompiledCost, { kind: 'response' }>;
/** The header reader of a completion that gave none (forward-auth, a status-only caller): every header is missing. */
const NO_HEADER = (): undefined => undefined;

/**
 * Each policy's effective cost: its own, else the route's (not for failed-auth policies, which
 * count failures). Undefined when no policy has one: the plain path then never looks.
 */
function costsOf(policies: readonly CompiledPolicy[], route: CompiledCost | undefined): Map<CompiledPolicy, CompiledCost> | undefined {
  let out: Map<CompiledPolicy, CompiledCost> | undefined;
  for (const p of policies) {
    let c = p.cost;
    if (c === undefined && route !== undefined && p.failedAuth === undefined) {
      try {
        c = checkCostFits(route, p, 'cost');
      } catch (err) {
        if (err instanceof SluiceConfigError) throw new SluiceConfigError('cost', `${err.reason} (policy "${p.name}")`);
        throw err;
      }
    }
    if (c !== undefined && !(c.kind === 'static' && c.units === 1)) (out ??= new Map()).set(p, c);
  }
  return out;
}

/**
 * Build a policy engine. Every option is validated here: a bad one throws
 * {@link SluiceConfigError} naming `<policy name>.<option>`.
 */
export function createPolicyEngine(options: PolicyEngineOptions): PolicyEngine {
  if (options === null || typeof options !== 'object') throw new SluiceConfigError('options', 'must be an object');
  const list = options.policies;
  if (!Array.isArray(list) || list.length === 0) throw new SluiceConfigError('policies', 'must be a non-empty array of policies');
  const policies = list.map((p, i) => {
    if (isCompiledPolicy(p)) return p;
    const name = (p as { name?: unknown } | null)?.name;
    if (typeof name !== 'string' || name.length === 0) throw new SluiceConfigError(`policies[${i}].name`, `is required, got ${describe(name)}`);
    return compilePolicy(p as RateLimitPolicyOptions, name, options.route);
  });
  const names = new Set<string>();
  const pools = new Set<string>();
  const byName = new Map(policies.map((p) => [p.name, p]));
  policies.forEach((p, i) => {
    if (names.has(p.name)) throw new SluiceConfigError(`policies[${i}].name`, `duplicate policy name "${p.name}"`);
    if (pools.has(p.pool)) throw new SluiceConfigError(`${p.name}.pool`, `counter "${p.pool}" is already used by another policy of this route`);
    names.add(p.name);
    pools.add(p.pool);
  });
  const clock = options.clock ?? systemClock;
  if (typeof clock !== 'function') throw new SluiceConfigError('clock', 'must be a function returning epoch ms');
  const ownStore = options.store === undefined;
  const store = options.store ?? new MemoryStore({ clock });
  if (typeof store?.decide !== 'function') throw new SluiceConfigError('store', 'must implement the Store interface');
  const buildId = options.buildId ?? process.env.SLUICE_BUILD_ID ?? randomUUID();
  if (typeof buildId !== 'string' || buildId.length === 0 || buildId.length > 200) {
    throw new SluiceConfigError('buildId', `must be a non-empty string of at most 200 characters, got ${describe(buildId)}`);
  }
  const logger = options.logger === false ? undefined : (options.logger ?? defaultLogger);
  const onEvent = options.onEvent;
  const stats: PolicyStats = { allowed: 0, limited: 0, shadowLimited: 0, denied: 0, storeErrors: 0 };
  const costs = costsOf(policies, compileCost(options.cost, 'cost'));
  const needsCompletion = policies.some((p) => p.failedAuth !== undefined || p.countOn !== undefined || costs?.get(p)?.kind === 'response');

  const deciders = createDeciders(store);
  const { decide, decideNow } = deciders;

  // --- onStoreError: 'local': the store's FallbackStore decides locally while the shared store fails ---
  // A FallbackStore given as the store is used as is (its own mode applies to the other policies);
  // a plain remote store is wrapped for the 'local' policies only (breaker + local share 1).
  const anyLocal = policies.some((p) => p.onStoreError === 'local');
  const fallback =
    store instanceof FallbackStore
      ? store
      : anyLocal && decideNow === undefined
        ? new FallbackStore({ store, onStoreError: 'error', closeStore: false, onEvent: (e) => logHealth(logger, e) })
        : undefined;
  const decideLocal: DecideFn | undefined = fallback === undefined ? undefined : (key, rules, cost, peek) => fallback.decideOrLocal(key, rules, cost, peek);
  /** The decision function for a policy (or a group of policies sharing a key: local if any is). */
  const decideFor = (g: readonly { policy: CompiledPolicy }[]): DecideFn =>
    decideLocal !== undefined && g.some((s) => s.policy.onStoreError === 'local') ? decideLocal : decide;

  // --- per-request limits from identifier functions, compiled once per distinct value ---
  const dynamic = new Map<CompiledPolicy, Map<string, Rule>>();
  const ruleFor = (p: CompiledPolicy, limits: IdentifierResult): Rule => {
    if (p.quota !== undefined) return quotaRuleFor(p, p.quota, limits);
    const limit = limits.requestsAllowed ?? p.rule.limit;
    const windowMs = limits.timeWindowMinutes === undefined ? p.rule.windowMs : windowMsOf(limits.timeWindowMinutes, undefined, `${p.name}.identifier() timeWindow`);
    if (limit === p.rule.limit && windowMs === p.rule.windowMs) return p.rule;
    let cache = dynamic.get(p);
    if (cache === undefined) dynamic.set(p, (cache = new Map()));
    const sig = `${limit}/${windowMs}`;
    let r = cache.get(sig);
    if (r === undefined) {
      r = ruleWithLimits(p, limit, windowMs, `${p.name}.identifier()`);
      if (cache.size >= MAX_DYNAMIC_RULES) cache.clear();
      cache.set(sig, r);
    }
    return r;
  };

  /** A quota's rule for a caller's own allowance (tier) and billing anchor, compiled once per distinct pair. */
  const quotaRuleFor = (p: CompiledPolicy, q: NonNullable<CompiledPolicy['quota']>, limits: IdentifierResult): Rule => {
    const requests = limits.requestsAllowed ?? p.rule.limit;
    const anchor = limits.quotaAnchor;
    if (requests === p.rule.limit && anchor === undefined) return p.rule;
    let cache = dynamic.get(p);
    if (cache === undefined) dynamic.set(p, (cache = new Map()));
    const sig = `${requests}@${anchor ?? ''}`;
    let r = cache.get(sig);
    if (r === undefined) {
      // Same name, same counter: a consumer changing tier keeps its count for the period.
      r = compileQuotaRule(q, p.pool, (f) => `${p.name}.identifier() ${f}`, { requests, ...(anchor !== undefined ? { anchor } : {}) });
      if (cache.size >= MAX_DYNAMIC_RULES) cache.clear();
      cache.set(sig, r);
    }
    return r;
  };

  // --- async mode: keys found over their limit are refused locally until their retry time ---
  const blocks = new AsyncBlocks();
  const asyncLocal = decideNow !== undefined; // a synchronous store answers at once: async mode is exact

  const emit = (e: PolicyEvent, msg?: string) => {
    if (msg !== undefined && logger !== undefined) {
      logger.warn({ event: e.type, policy: e.policy, key: e.key, requestId: e.requestId, path: e.path, ...(e.error ? { err: String(e.error) } : {}) }, msg);
    }
    onEvent?.(e);
  };

  const NOOP = () => {};

  function denyWith(ctx: RequestContext, status: number, detail: string, reason: PolicyReason, policy: string, decision?: Decision): PolicyResult {
    const limited = reason === 'rate-limited' || reason === 'penalty';
    if (limited) stats.limited++;
    else stats.denied++;
    // A policy's custom refusal (statusCode, detail, headers, handler) applies to its 429s.
    const refusal = limited ? byName.get(policy)?.refusal : undefined;
    if (refusal !== undefined) {
      status = refusal.statusCode;
      detail = refusal.detail ?? detail;
      if (refusal.headers !== undefined) Object.assign(ctx.headers, refusal.headers);
    }
    ctx.headers['content-type'] = PROBLEM_CONTENT_TYPE;
    let body = problemBody(problem(status, detail, ctx.path, { requestId: ctx.requestId, timestamp: new Date(clock()).toISOString(), buildId }));
    if (refusal?.handler !== undefined) {
      const change = applyHandler(refusal.handler, { request: ctx.request, policy, decision, status, headers: { ...ctx.headers }, body });
      if (change?.status !== undefined) status = change.status;
      if (change?.headers !== undefined) Object.assign(ctx.headers, change.headers);
      if (change?.body !== undefined) body = change.body;
    }
    const r: PolicyResult = { action: 'deny', status, reason, headers: ctx.headers, body, requestId: ctx.requestId, policy, shadowLimited: ctx.shadowLimited, complete: NOOP };
    if (decision !== undefined) (r as { decision?: Decision }).decision = decision;
    return r;
  }
  /** A store failure off the request's path (background counting, charges, blocks): counted and logged, never thrown. */
  function storeFailed(p: CompiledPolicy, key: string, requestId: string, path: string, error: unknown): void {
    stats.storeErrors++;
    emit({ type: 'store-error', policy: p.name, key, requestId, path, error }, 'rate-limit store failed');
  }
  function failWith(ctx: RequestContext, p: CompiledPolicy, key: string | undefined, error: unknown, type: 'store-error' | 'identifier-error'): PolicyResult | undefined {
    stats.storeErrors++;
    emit({ type, policy: p.name, key, requestId: ctx.requestId, path: ctx.path, error }, type === 'store-error' ? 'rate-limit store failed' : 'rate-limit identifier failed');
    return p.onStoreError === 'deny' ? denyWith(ctx, 503, DETAILS.storeUnavailable, 'store-error', p.name) : undefined;
  }

  function* evaluate(req: HttpRequestInfo): Generator<unknown, PolicyResult, unknown> {
    const requestId = requestIdOf(req.headers['x-request-id']);
    const headers: Record<string, string> = { 'x-request-id': requestId };
    const path = pathOf(req.path);

    const ctx: RequestContext = { request: req, requestId, headers, path, shadowLimited: false };

    let strict: Pending[] | undefined;
    let later: Pending[] | undefined; // shadow and async policies
    let failedAuth: Pending[] | undefined;
    let byResponse: Pending[] | undefined; // charged in complete(status), peeked here
    for (const p of policies) {
      if (p.deny !== undefined || p.allow !== undefined) {
        const ip = () => clientIp(req, p.trust, p.forwardedHeader);
        if (p.deny?.(req, ip)) {
          emit({ type: 'denied', policy: p.name, requestId, path });
          return denyWith(ctx, 403, DETAILS.denied, 'deny-list', p.name);
        }
        if (p.allow?.(req, ip)) continue;
      }
      let id: Identity;
      try {
        const r = identify(req, p);
        id = r instanceof Promise ? ((yield r) as Identity) : r;
      } catch (err) {
        const d = failWith(ctx, p, undefined, err, 'identifier-error');
        if (d) return d;
        continue;
      }
      if (id.kind === 'skip') continue;
      if (id.kind === 'unidentified') {
        if (p.onUnidentified === 'allow') continue;
        const fallback = p.onUnidentified === 'ip' && p.rateLimitBy !== 'ip' ? ipKey(req, p) : undefined;
        if (fallback === undefined) {
          emit({ type: 'unidentified', policy: p.name, requestId, path });
          return denyWith(ctx, p.rateLimitBy === 'user' || p.rateLimitBy === 'apiKey' ? 401 : 400, DETAILS.unidentified, 'unidentified', p.name);
        }
        id = { kind: 'key', key: fallback };
      }
      let rule = p.rule;
      if (id.limits !== undefined) {
        try {
          rule = ruleFor(p, id.limits);
        } catch (err) {
          const d = failWith(ctx, p, id.key, err, 'identifier-error');
          if (d) return d;
          continue;
        }
      }
      let pending: Pending;
      const c = costs === undefined ? undefined : costs.get(p);
      if (c === undefined) pending = { policy: p, key: id.key, rule };
      else {
        const x = withCost(ctx, p, id.key, rule, c);
        if (x === undefined) continue;
        if ('action' in x) return x;
        pending = x;
      }
      if (p.failedAuth !== undefined) (failedAuth ??= []).push(pending);
      else if (p.countOn !== undefined) (byResponse ??= []).push(pending);
      else if (p.shadow || (p.mode === 'async' && !asyncLocal)) (later ??= []).push(pending);
      else (strict ??= []).push(pending);
    }

    // Failed-auth penalties: a peek, nothing consumed.
    if (failedAuth !== undefined) {
      for (const f of failedAuth) {
        let d: Decision;
        try {
          d = (yield penaltyStatus(decideFor([f]), f.policy, f.key)) as Decision;
        } catch (err) {
          const r = failWith(ctx, f.policy, f.key, err, 'store-error');
          if (r) return r;
          continue;
        }
        if (!d.allowed) {
          emit({ type: 'penalty', policy: f.policy.name, key: f.key, requestId, path });
          // Same headers as any refusal, through the one writer: the failure budget is used up (r=0) until the penalty ends.
          writeRateLimitHeaders(headers, [headerInput(f, d)], d.retryAfterMs, clock());
          return denyWith(ctx, 429, DETAILS.rateLimited, 'penalty', f.policy.name, d);
        }
      }
    }

    // Block duration: a key refused by a policy with a block stays refused until the block ends.
    for (const list of [strict, byResponse]) {
      if (list === undefined) continue;
      for (const s of list) {
        if (s.policy.block === undefined) continue;
        let d: Decision;
        try {
          d = (yield blockStatus(decide, s.policy.block, s.key)) as Decision;
        } catch (err) {
          const r = failWith(ctx, s.policy, s.key, err, 'store-error');
          if (r) return r;
          continue;
        }
        if (!d.allowed) {
          emit({ type: 'penalty', policy: s.policy.name, key: s.key, requestId, path, retryAfterMs: d.retryAfterMs });
          // Through the one header writer like every refusal: the policy (its own limit and window,
          // not the block's) shows r=0 until the block ends.
          writeRateLimitHeaders(headers, [headerInput(s, { ...d, limit: s.rule.limit, windowMs: s.rule.windowMs, remaining: 0 })], d.retryAfterMs, clock());
          return denyWith(ctx, 429, blockedDetail(s.policy, d), 'penalty', s.policy.name, d);
        }
      }
    }

    // Count-by-response policies: a peek now (an exhausted key is refused), the charge in complete().
    let byResponseInputs: HeaderInput[] | undefined;
    if (byResponse !== undefined) {
      for (const b of byResponse) {
        let d: Decision;
        try {
          d = (yield decide(b.key, [b.rule], b.cost ?? 1, true)) as Decision;
        } catch (err) {
          const r = failWith(ctx, b.policy, b.key, err, 'store-error');
          if (r) return r;
          continue;
        }
        const input: HeaderInput = { name: b.policy.pool, headerMode: b.policy.headerMode, quota: b.rule.limit, outcome: d };
        if (!d.allowed) {
          emit({ type: 'limited', policy: b.policy.name, key: b.key, requestId, path });
          const dd = b.policy.block === undefined ? d : ((yield blockAfter(b.policy, b.key, d, requestId, path)) as Decision);
          writeRateLimitHeaders(headers, [input], dd.retryAfterMs, clock());
          return denyWith(ctx, 429, refusalDetail(b.policy, b.rule, d), 'rate-limited', b.policy.name, dd);
        }
        (byResponseInputs ??= []).push(input);
      }
    }

    // Async policies with a remote store: refused locally while a block is known, else counted in the background.
    if (later !== undefined) {
      const now = clock();
      for (const a of later) {
        if (a.policy.shadow) continue;
        const o = blocks.refusal(a, now);
        if (o !== undefined) {
          emit({ type: 'limited', policy: a.policy.name, key: a.key, requestId, path });
          writeRateLimitHeaders(headers, [headerInput(a, o)], o.retryAfterMs, now);
          return denyWith(ctx, 429, DETAILS.rateLimited, 'rate-limited', a.policy.name);
        }
      }
    }

    let decision: Decision | undefined;
    const inputs: HeaderInput[] = [];
    if (strict !== undefined) {
      // Synchronous store, single key: decided inline (no promise): the hot path of a plain policy.
      const outcome = decideNow !== undefined && (strict.length === 1 || sameKey(strict)) ? decideSyncGroup(strict, inputs, decideNow) : ((yield decideStrict(strict, inputs, { decideFor, decideNow })) as StrictOutcome);
      if (outcome.error !== undefined) {
        const r = failWith(ctx, outcome.error.policy, outcome.error.key, outcome.error.error, 'store-error');
        if (r) return r;
      }
      decision = outcome.decision;
      if (decision !== undefined && !decision.allowed) {
        const refusing = outcome.refusing as CompiledPolicy;
        const pending = strict.find((s) => s.policy === refusing) as Pending;
        emit({ type: 'limited', policy: refusing.name, key: decision.key, requestId, path });
        const shown = refusing.block === undefined ? decision : ((yield blockAfter(refusing, pending.key, decision, requestId, path)) as Decision);
        writeRateLimitHeaders(headers, inputs, shown.retryAfterMs, clock());
        return denyWith(ctx, 429, refusalDetail(refusing, pending.rule, decision), 'rate-limited', refusing.name, shown);
      }
    }

    if (later !== undefined) {
      for (const a of later) {
        const p = a.policy;
        const settle = (d: Decision) => {
          if (d.allowed) return;
          if (p.shadow) {
            ctx.shadowLimited = true;
            stats.shadowLimited++;
            emit({ type: 'shadow-limited', policy: p.name, key: a.key, requestId, path }, 'shadow policy would refuse');
          } else if (p.block !== undefined) {
            // The refusal starts the policy's block (escalated as configured): held locally for its length.
            void blockAfter(p, a.key, d, requestId, path).then((dd) => blocks.block(a, dd, clock()));
          } else {
            blocks.block(a, d, clock());
          }
        };
        const failed = (err: unknown) => storeFailed(p, a.key, requestId, path, err);
        if (decideNow !== undefined) {
          // A synchronous store answers at once: shadow refusals show on this very request.
          try {
            settle(decideNow(a.key, [a.rule], false, a.cost));
          } catch (err) {
            failed(err);
          }
        } else {
          decideFor([a])(a.key, [a.rule], a.cost ?? 1, false).then(settle, failed);
        }
      }
    }

    if (byResponseInputs !== undefined) inputs.push(...byResponseInputs);
    let complete: PolicyResult['complete'] = NOOP;
    if (failedAuth !== undefined || byResponse !== undefined || ctx.costFromResponse !== undefined) {
      let done = false;
      const fa = failedAuth ?? [];
      const br = byResponse ?? [];
      const cr = ctx.costFromResponse ?? [];
      complete = (status, header) => {
        if (done) return;
        done = true;
        if (cr.length > 0) {
          // The real cost beyond the reserve, charged unconditionally: the budget may go negative
          // (an overdraft) and later requests are refused until it is paid back.
          const response: HttpResponseInfo = { status, header: header ?? NO_HEADER };
          // 499 without a response: the gateway's client left before the upstream answered (the
          // upstream call is aborted, but its work may be done and paid for): charged `max`, so
          // leaving early is never cheaper than waiting for the real figure.
          const gone = status === 499 && header === undefined;
          for (const [c, rc] of cr) {
            const extra = gone ? rc.max - rc.reserve : responseExtra(rc, response, req);
            if (extra === 0) continue;
            // An 'onStoreError: local' policy's reserve may have been decided locally: so is the rest.
            const charged = fallback !== undefined && c.policy.onStoreError === 'local' ? fallback.chargeOrLocal(c.key, [c.rule], extra) : store.charge(c.key, [c.rule], extra);
            charged.catch((err: unknown) => storeFailed(c.policy, c.key, requestId, path, err));
          }
        }
        for (const b of br) {
          if (!(b.policy.countOn as (s: number) => boolean)(status)) continue;
          decide(b.key, [b.rule], b.cost ?? 1, false).catch((err: unknown) => storeFailed(b.policy, b.key, requestId, path, err));
        }
        for (const f of fa) {
          recordOutcome(decideFor([f]), f.policy, f.key, status).then(
            (started) => {
              if (started) emit({ type: 'penalty-started', policy: f.policy.name, key: f.key, requestId, path }, 'failed-auth penalty started');
            },
            (err: unknown) => storeFailed(f.policy, f.key, requestId, path, err),
          );
        }
      };
    }
    return allowWith(ctx, inputs, decision, complete);
  }

  /** An admitted request's result, with the headers of the policies that applied. */
  function allowWith(ctx: RequestContext, inputs: readonly HeaderInput[], decision: Decision | undefined, complete: PolicyResult['complete']): PolicyResult {
    // Only `ietf` and `legacy` write anything on an admitted response: skip the writers (and the clock) otherwise.
    if (inputs.length > 0 && headersOnAllow) writeRateLimitHeaders(ctx.headers, inputs, undefined, clock());
    stats.allowed++;
    // Two literals rather than adding `decision` afterwards: each keeps one object shape.
    return decision === undefined
      ? { action: 'allow', status: 200, reason: 'allowed', headers: ctx.headers, requestId: ctx.requestId, shadowLimited: ctx.shadowLimited, complete }
      : { action: 'allow', status: 200, reason: 'allowed', headers: ctx.headers, requestId: ctx.requestId, shadowLimited: ctx.shadowLimited, complete, decision };
  }

  const headersOnAllow = policies.some((p) => p.headerMode === 'ietf' || p.headerMode === 'legacy');

  // --- the plain route: decided in one ordinary call, without the generator ---
  // Every policy is a strict one that only counts one unit (no cost, allow/deny lists, failed-auth,
  // count-by-response, block, shadow or background counting; identified synchronously) and the store
  // decides synchronously: the common case. The generator and its driver cost more than the
  // decision itself (see docs/benchmarks.md, HTTP layer); this path does what the generator would
  // for such a route, and hands anything else (an unidentified caller, policies under different
  // keys, an identifier that throws) to the generator before counting anything.
  const plain =
    decideNow !== undefined &&
    costs === undefined &&
    policies.every((p) => p.allow === undefined && p.deny === undefined && p.failedAuth === undefined && p.countOn === undefined && p.block === undefined && !p.shadow && p.rateLimitBy !== 'function');

  function evaluatePlain(req: HttpRequestInfo, now: DecideNow): PolicyResult | undefined {
    const strict: Pending[] = [];
    try {
      for (const p of policies) {
        const id = identify(req, p) as Identity;
        if (id.kind !== 'key') return undefined;
        strict.push({ policy: p, key: id.key, rule: p.rule });
      }
    } catch {
      return undefined; // the generator identifies again and reports the identifier error
    }
    if (!sameKey(strict)) return undefined;
    const ctx = new PlainContext(req, requestIdOf(req.headers['x-request-id']));
    const inputs: HeaderInput[] = [];
    const outcome = decideSyncGroup(strict, inputs, now);
    if (outcome.error !== undefined) {
      const r = failWith(ctx, outcome.error.policy, outcome.error.key, outcome.error.error, 'store-error');
      if (r) return r;
    }
    const decision = outcome.decision;
    if (decision !== undefined && !decision.allowed) {
      const refusing = outcome.refusing as CompiledPolicy;
      emit({ type: 'limited', policy: refusing.name, key: decision.key, requestId: ctx.requestId, path: ctx.path });
      writeRateLimitHeaders(ctx.headers, inputs, decision.retryAfterMs, clock());
      return denyWith(ctx, 429, refusalDetail(refusing, (strict.find((s) => s.policy === refusing) as Pending).rule, decision), 'rate-limited', refusing.name, decision);
    }
    return allowWith(ctx, inputs, decision, NOOP);
  }

  /**
   * A policy's pending entry with this request's cost (out of the generator, so the plain path's
   * frame stays as small as before). Client input that is not a cost (garbage, over max, zero) is
   * a 400 naming it, nothing counted; a cost function that fails is an identifier error
   * (undefined: the policy is skipped, as `onStoreError` says).
   */
  function withCost(ctx: RequestContext, p: CompiledPolicy, key: string, rule: Rule, c: CompiledCost): Pending | PolicyResult | undefined {
    let units: RequestCost;
    if (c.kind === 'static') units = c.units;
    else if (c.kind === 'response') units = c.reserve; // the rest is charged when the response arrives
    else {
      try {
        units = c.of(ctx.request);
      } catch (err) {
        return failWith(ctx, p, key, err, 'identifier-error');
      }
    }
    if (typeof units !== 'number') return denyWith(ctx, 400, `Invalid request cost: ${units.invalid}`, 'invalid-cost', p.name);
    const pending: Pending = { policy: p, key, rule, cost: units };
    if (c.kind === 'response') (ctx.costFromResponse ??= []).push([pending, c]);
    return pending;
  }

  /**
   * Start the block of a policy that just refused `key` (its length escalated per
   * `blockEscalation`); the refusal then shows the longer of the two waits (Retry-After,
   * analytics). A store failure here keeps the plain refusal.
   */
  async function blockAfter(p: CompiledPolicy, key: string, d: Decision, requestId: string, path: string): Promise<Decision> {
    try {
      const { started, blockedMs: ms } = await startBlock(decide, p.block as Rule, key);
      if (started) emit({ type: 'block-started', policy: p.name, key, requestId, path, retryAfterMs: ms });
      return ms > d.retryAfterMs ? { ...d, retryAfterMs: ms } : d;
    } catch (err) {
      storeFailed(p, key, requestId, path, err);
      return d;
    }
  }

  /** The 429 `detail` of a blocked key. */
  function blockedDetail(p: CompiledPolicy, d: Decision): string {
    return `Rate limit exceeded: blocked by "${p.pool}" until ${new Date(Math.round((clock() + d.retryAfterMs) / 1000) * 1000).toISOString()} after an earlier refusal`;
  }

  /** The 429 `detail`: a quota says it is exhausted and when it renews (in cost units when requests have a cost). */
  function refusalDetail(p: CompiledPolicy, rule: Rule, d: Decision): string {
    return p.quota !== undefined ? quotaExhaustedDetail(rule, d, clock(), costs?.has(p) === true ? 'units' : undefined) : DETAILS.rateLimited;
  }

  /**
   * Run the generator: synchronously while every step is synchronous (memory store, plain
   * identifiers), switching to promises only at the first real asynchronous step.
   */
  function drive(gen: Generator<unknown, PolicyResult, unknown>, step: IteratorResult<unknown, PolicyResult>): PolicyResult | Promise<PolicyResult> {
    for (;;) {
      if (step.done) return step.value;
      const v = step.value;
      if (v instanceof Promise) {
        return v.then(
          (x) => drive(gen, gen.next(x)),
          (e: unknown) => drive(gen, gen.throw(e)),
        );
      }
      step = gen.next(v);
    }
  }
  const evaluateRequest = (req: HttpRequestInfo): PolicyResult | Promise<PolicyResult> => {
    if (plain) {
      const r = evaluatePlain(req, decideNow as DecideNow);
      if (r !== undefined) return r;
    }
    const gen = evaluate(req);
    return drive(gen, gen.next());
  };
  const check = (req: HttpRequestInfo): Promise<PolicyResult> => {
    try {
      const r = evaluateRequest(req);
      return r instanceof Promise ? r : Promise.resolve(r);
    } catch (err) {
      return Promise.reject(err);
    }
  };

  return {
    check,
    evaluate: evaluateRequest,
    policies,
    store,
    buildId,
    needsCompletion,
    stats,
    close: async () => {
      if (fallback !== undefined && fallback !== store) await fallback.close(); // our wrapper: stops its probe only
      if (ownStore) await store.close();
    },
  };
}
