/**
 * From the config's named policies to the HTTP layer's policy engines, one per route, all on the
 * same store (so a policy named on two routes, or a shared `pool`, is one counter: Zuplo's model).
 *
 * Per-consumer policies (`rateLimitBy: user` or `apiKey`) are handed to the engine as
 * `rateLimitBy: function` with an identifier written here: it keys the bucket by the consumer
 * (`user:<sub>`) or by the key id (`apikey:<id>`), and returns the consumer's limits: a runtime
 * override (admin API) first, else its tier's limits from the config, else the policy's own. The
 * lookup is a synchronous read of the registry's replica.
 */
import { PERIOD_MS } from '../core/algorithms/quota/index.js';
import type { Rule } from '../core/rule.js';
import { createPolicyEngine, type PolicyEngine, type PolicyEngineOptions } from '../http/engine.js';
import { identifierKey, ipKey } from '../http/identify.js';
import { compilePolicy, ruleWithLimits, windowMsOf, type CompiledPolicy, type IdentifierResult, type RateLimitPolicyOptions } from '../http/options.js';
import type { HttpRequestInfo } from '../http/request.js';
import { SluiceConfigError } from '../core/errors.js';
import type { Store } from '../core/store.js';
import type { GatewayConfig, PolicyConfig } from './config.js';
import type { ConsumerRegistry } from './consumers.js';

/** The gateway's request info: the HTTP layer's, plus the id of the API key used. */
export interface GatewayRequestInfo extends HttpRequestInfo {
  keyId?: string;
  /** Milliseconds the policy engine took (store round trips included), for observability. */
  policyMs?: number;
  /** Upstream path and query when the route strips a prefix (built from the matched path). */
  target?: string;
}

/** Limits resolved for one consumer under one policy. */
export interface EffectiveLimits {
  requestsAllowed: number;
  windowMs: number;
  source: 'override' | 'tier' | 'policy';
}

/** Per-consumer policy facts the admin API needs (reset, state). */
export interface ConsumerPolicy {
  name: string;
  pool: string;
  by: 'user' | 'apiKey';
  config: PolicyConfig;
  /** The compiled policy (its rule under other limits: `ruleWithLimits`). */
  policy: CompiledPolicy;
  /** The policy's static rule (its counter: pool + algorithm). */
  rule: Rule;
}

/** Everything compiled from the policies and tiers of a config. */
export interface CompiledPolicies {
  /** One engine per route index (undefined when the route has no policy). */
  engines: (PolicyEngine | undefined)[];
  /** Routes that must refuse requests without an authenticated consumer. */
  requireUser: boolean[];
  consumerPolicies: Map<string, ConsumerPolicy>;
  limitsFor(sub: string, tier: string | undefined, policy: string): EffectiveLimits;
  /** The store key the engine uses for a consumer bucket. */
  bucketKey(kind: 'user' | 'apikey', id: string): string;
}

/** A policy's window: its quota period's nominal length, or its time window. */
function policyWindowMs(p: PolicyConfig, name: string): number {
  if (p.period !== undefined) return PERIOD_MS[p.period];
  return windowMsOf(p.timeWindowMinutes, p.timeWindowSeconds, `policies.${name}.timeWindow`);
}

/** Run `f`; a config error it throws names its full path under `policies.<name>` (`policies.p.burst`). */
function underPolicy<T>(name: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (!(err instanceof SluiceConfigError) || err.field.startsWith('policies.')) throw err;
    throw err.under(name).under('policies');
  }
}

const own = <T>(o: Record<string, T>, k: string): T | undefined => (Object.hasOwn(o, k) ? o[k] : undefined);

/** Compile every route's engine. Throws SluiceConfigError with a `policies.<name>.<option>` field. */
export function compilePolicies(
  config: GatewayConfig,
  registry: ConsumerRegistry,
  settings: Omit<PolicyEngineOptions, 'policies'> & { store: Store },
): CompiledPolicies {
  const consumerPolicies = new Map<string, ConsumerPolicy>();
  const tiers = config.tiers;

  const limitsFor = (sub: string, tier: string | undefined, policy: string): EffectiveLimits => {
    const p = own(config.policies, policy) as PolicyConfig;
    const base = policyWindowMs(p, policy);
    if (p.period !== undefined) return quotaLimitsFor(sub, tier, policy, p, base);
    const o = registry.override(sub, policy);
    if (o !== undefined) return { requestsAllowed: o.requestsAllowed, windowMs: o.timeWindowMinutes !== undefined ? o.timeWindowMinutes * 60_000 : base, source: 'override' };
    return (tier === undefined ? undefined : tierLimitsFor(tier, policy, base)) ?? { requestsAllowed: p.requestsAllowed as number, windowMs: base, source: 'policy' };
  };

  /** A rate limit's limits under a tier (its entry for the policy, else its own), or undefined when the tier sets none. */
  const tierLimitsFor = (tier: string, policy: string, base: number): EffectiveLimits | undefined => {
    const t = own(tiers, tier);
    const per = t?.policies === undefined ? undefined : own(t.policies, policy);
    if (per !== undefined) return { requestsAllowed: per.requestsAllowed as number /* validateConfig: a rate limit's tier entry has requestsAllowed */, windowMs: windowMsOf(per.timeWindowMinutes, per.timeWindowSeconds, 'tier', base), source: 'tier' };
    if (t?.requestsAllowed !== undefined) return { requestsAllowed: t.requestsAllowed, windowMs: windowMsOf(t.timeWindowMinutes, t.timeWindowSeconds, 'tier', base), source: 'tier' };
    return undefined;
  };

  /**
   * A quota's allowance for a consumer: an override made for this very policy (a `*` override
   * sets rate limits, never a quota), else its tier's `allowances` for the policy, else the tier's
   * `allowances`, else the policy's.
   */
  const quotaLimitsFor = (sub: string, tier: string | undefined, policy: string, p: PolicyConfig, windowMs: number): EffectiveLimits => {
    const o = registry.override(sub, policy);
    if (o !== undefined && o.policy === policy) return { requestsAllowed: o.requestsAllowed, windowMs, source: 'override' };
    const requests = tier === undefined ? undefined : tierAllowance(tier, policy);
    if (requests !== undefined) return { requestsAllowed: requests, windowMs, source: 'tier' };
    return { requestsAllowed: p.allowances?.requests ?? 1, windowMs, source: 'policy' };
  };

  /** A quota's allowance under a tier (its entry for the policy, else its own), or undefined. */
  const tierAllowance = (tier: string, policy: string): number | undefined => {
    const t = own(tiers, tier);
    const per = t?.policies === undefined ? undefined : own(t.policies, policy);
    return per?.allowances?.requests ?? t?.allowances?.requests;
  };

  /**
   * A static cost (the policy's own, else the route's) above a tier's capacity for a per-consumer
   * policy would refuse every request of that tier's consumers, as one above the policy's own
   * capacity would: a startup error naming the tier, not a 429 at the first request.
   */
  const checkTierCosts = (route: GatewayConfig['routes'][number], i: number): void => {
    const routeCost = typeof route.cost === 'number' ? route.cost : undefined;
    for (const name of route.policies) {
      const cp = consumerPolicies.get(name);
      if (cp === undefined) continue;
      const mine = cp.policy.cost;
      const units = mine === undefined ? routeCost : mine.kind === 'static' ? mine.units : undefined;
      if (units === undefined || units === 0) continue;
      const base = policyWindowMs(cp.config, name);
      for (const tier of Object.keys(tiers)) {
        let capacity: number | undefined;
        if (cp.config.period !== undefined) capacity = tierAllowance(tier, name);
        else {
          const l = tierLimitsFor(tier, name, base);
          if (l !== undefined) capacity = ruleWithLimits(cp.policy, l.requestsAllowed, l.windowMs, `tiers.${tier}`).burst;
        }
        if (capacity !== undefined && units > capacity) {
          const field = mine === undefined ? `routes[${i}].cost` : `policies.${name}.cost`;
          throw new SluiceConfigError(field, `${units} exceeds the capacity of ${capacity} units that tier "${tier}" gives policy "${name}": every request of its consumers would be refused`);
        }
      }
    }
  };

  // Compile each named policy once: every route naming it shares the compiled object, except a
  // compound key with a `route` part, which is compiled per route (the route label is in its key).
  const compiled = new Map<string, CompiledPolicy>();
  const compileOne = (name: string, p: PolicyConfig, route = '(check)'): CompiledPolicy => {
    const { rateLimitBy, ...rest } = p;
    // Failed-auth counting by consumer: no per-consumer limits apply, keep the plain mode.
    if ((rateLimitBy !== 'user' && rateLimitBy !== 'apiKey') || p.failedAuth !== undefined) // Compound-key part names are checked by compilePolicy (the schema only knows they are strings).
      return compilePolicy({ ...rest, rateLimitBy, name } as RateLimitPolicyOptions, name, route);
    const defaultMs = policyWindowMs(p, name);
    const fallback = p.onUnidentified ?? 'ip';
    const by = rateLimitBy;
    let self: CompiledPolicy | undefined;
    const identifier = (req: HttpRequestInfo): IdentifierResult | undefined => {
      const r = req as GatewayRequestInfo;
      const u = r.user;
      const id = u === undefined ? undefined : by === 'user' ? `user:${u.sub}` : r.keyId !== undefined ? `apikey:${r.keyId}` : undefined;
      if (id === undefined || u === undefined) {
        // Never a shared anonymous bucket: limit by client IP, or let through when configured.
        if (fallback !== 'ip') return undefined; // 'deny' was answered before the engine (route requires a user)
        const ip = ipKey(req, self as CompiledPolicy);
        return ip === undefined ? undefined : { key: ip };
      }
      const l = limitsFor(u.sub, u.tier, name);
      if (p.period !== undefined) {
        const anchor = registry.consumer(u.sub)?.billingAnchor;
        if (l.source === 'policy' && anchor === undefined) return { key: id };
        return { key: id, requestsAllowed: l.requestsAllowed, ...(anchor !== undefined ? { quotaAnchor: anchor } : {}) };
      }
      if (l.source === 'policy') return { key: id };
      return l.windowMs === defaultMs ? { key: id, requestsAllowed: l.requestsAllowed } : { key: id, requestsAllowed: l.requestsAllowed, timeWindowMinutes: l.windowMs / 60_000 };
    };
    self = compilePolicy({ ...rest, onUnidentified: fallback === 'deny' ? 'allow' : fallback, rateLimitBy: 'function', identifier, name } as RateLimitPolicyOptions, name, route);
    consumerPolicies.set(name, { name, pool: self.pool, by, config: p, policy: self, rule: self.rule });
    return self;
  };

  // Every policy is compiled now, used by a route or not: a later reload naming it must not be
  // the first to find its error.
  for (const [name, p] of Object.entries(config.policies)) compiled.set(name, underPolicy(name, () => compileOne(name, p)));
  const perRoute = (name: string, label: string): CompiledPolicy => {
    const p = own(config.policies, name) as PolicyConfig;
    const parts = p.rateLimitBy ?? p.quotaBy;
    return Array.isArray(parts) && parts.includes('route') ? underPolicy(name, () => compileOne(name, p, label)) : (compiled.get(name) as CompiledPolicy);
  };

  const engines: (PolicyEngine | undefined)[] = [];
  const requireUser: boolean[] = [];
  config.routes.forEach((route, i) => {
    if (route.auth === 'none') {
      // `auth: none` never authenticates, so `deny` would have nobody to let through and nobody to refuse.
      const deny = route.policies.find((n) => {
        const p = config.policies[n] as PolicyConfig;
        return (p.rateLimitBy === 'user' || p.rateLimitBy === 'apiKey') && p.onUnidentified === 'deny';
      });
      if (deny !== undefined) throw new SluiceConfigError(`routes[${i}].auth`, `"none" cannot be combined with policy "${deny}" (onUnidentified: deny needs authentication): use auth: required, or onUnidentified: ip`);
    }
    requireUser.push(
      route.auth === 'required' ||
        route.policies.some((n) => {
          const p = own(config.policies, n) as PolicyConfig;
          return (p.rateLimitBy === 'user' || p.rateLimitBy === 'apiKey') && p.onUnidentified === 'deny';
        }),
    );
    if (route.upstream === undefined) {
      // A decision-only route answers proxies (nginx auth_request, ...) that never show it the response.
      const fromResponse = (c: unknown) => typeof c === 'object' && c !== null && Object.hasOwn(c, 'responseHeader');
      const reason = 'a decision-only route (no upstream) never sees the response, so a cost from the response would charge only its reserve: give the route an upstream, or a static or request cost';
      if (fromResponse(route.cost)) throw new SluiceConfigError(`routes[${i}].cost`, reason);
      const j = route.policies.findIndex((n) => fromResponse(own(config.policies, n)?.cost));
      if (j >= 0) throw new SluiceConfigError(`routes[${i}].policies[${j}]`, `policy "${route.policies[j]}": ${reason}`);
    }
    if (route.policies.length === 0) {
      engines.push(undefined);
      return;
    }
    try {
      engines.push(createPolicyEngine({ ...settings, policies: route.policies.map((n) => perRoute(n, route.name ?? route.path)), ...(route.cost !== undefined ? { cost: route.cost } : {}) }));
    } catch (err) {
      if (err instanceof SluiceConfigError) {
        // The route's own cost (`cost`, `cost.max`): named under the route.
        if (err.field === 'cost' || err.field.startsWith('cost.')) throw new SluiceConfigError(`routes[${i}].${err.field}`, err.reason);
        const field = err.field.includes('.') ? `policies.${err.field}` : `routes[${i}].policies (${err.field})`;
        throw new SluiceConfigError(field, err.reason);
      }
      throw err;
    }
    checkTierCosts(route, i);
  });

  return { engines, requireUser, consumerPolicies, limitsFor, bucketKey: (kind, id) => identifierKey(`${kind}:${id}`) };
}
