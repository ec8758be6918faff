/**
 * The rate limit service's decision: one `ShouldRateLimit` request in, one response out, the
 * contract of envoyproxy/ratelimit (src/service/ratelimit.go) with Sluice's store behind it.
 *
 * Per descriptor: find the configured limit (match.ts) or take Envoy's `limit` override, drop
 * `unlimited` ones and those another matched limit `replaces`, then count `hits_addend` hits (the
 * descriptor's own, else the request's, 0 meaning 1; a descriptor's 0 only checks). One counter per
 * distinct descriptor (domain + every key and value), as in the Go service.
 *
 * Unlike the Go service, a request refused by one descriptor consumes from none: the counted
 * descriptors are first checked, then all consumed. With the memory store the two steps run in
 * one synchronous turn, so this is exact; with Redis another process may consume in between,
 * and then the request is refused after the descriptors before the refusing one were counted
 * (never an over-admission: each consume is atomic on its own key).
 */
import type { Decision, RuleOutcome } from '../../core/decision.js';
import type { Rule } from '../../core/rule.js';
import { isSyncStore, type Decider, type Store } from '../../core/store.js';
import type { ConfiguredLimit, RateLimitConfig, Unit } from './config.js';
import { ruleOf, UNIT_MS } from './config.js';
import { responseHeaders, untilResetMs, type HeaderSet, type HeaderValue } from './headers.js';
import { findLimit, type Entry } from './match.js';
import type { RlsAlgorithm } from './settings.js';

/** A descriptor as decoded from Envoy's `RateLimitRequest` (proto field names; absent = default). */
export interface RlsDescriptor {
  entries?: { key?: string; value?: string }[] | null;
  limit?: { requests_per_unit?: number; unit?: string | number } | null;
  hits_addend?: { value?: number | string } | null;
}

/** Envoy's `RateLimitRequest`. */
export interface RlsRequest {
  domain?: string;
  descriptors?: RlsDescriptor[] | null;
  hits_addend?: number;
}

/** Envoy's `RateLimitResponse.RateLimit` (the `current_limit` of a status). */
export interface CurrentLimit {
  name?: string;
  requests_per_unit: number;
  unit: Unit;
}

/** Envoy's `RateLimitResponse.DescriptorStatus`. */
export interface DescriptorStatus {
  code: 'OK' | 'OVER_LIMIT';
  current_limit?: CurrentLimit;
  limit_remaining: number;
  duration_until_reset?: { seconds: number; nanos: number };
}

/** Envoy's `RateLimitResponse` (the fields Sluice sets). */
export interface RlsResponse {
  overall_code: 'OK' | 'OVER_LIMIT';
  statuses: DescriptorStatus[];
  response_headers_to_add: HeaderValue[];
}

/** A request Envoy's contract forbids (empty domain or descriptors, oversized lists...): gRPC INVALID_ARGUMENT. */
export class RlsRequestError extends Error {
  override readonly name = 'RlsRequestError';
}

/** Options of {@link RlsService}. */
export interface RlsServiceOptions {
  config: RateLimitConfig;
  store: Store;
  /** Algorithm of Envoy's `limit` overrides (configured limits carry their own). Default `gcra`. */
  algorithm?: RlsAlgorithm;
  responseHeaders?: HeaderSet;
  /** Answer OK whatever the limits say (statuses still report them). */
  shadowMode?: boolean;
  /** A domain no config defines: `error` (INVALID_ARGUMENT, default) or `allow` (OK, no limits). */
  unknownDomain?: 'error' | 'allow';
  maxDescriptors?: number;
  maxEntries?: number;
  maxValueLength?: number;
  /** Epoch ms, for the `X-RateLimit-Reset` arithmetic only. Default `Date.now`. */
  clock?: () => number;
}

const MAX_UINT32 = 4_294_967_295;
const OVERRIDE_UNITS: readonly (Unit | undefined)[] = [undefined, 'SECOND', 'MINUTE', 'HOUR', 'DAY', 'MONTH', 'YEAR', 'WEEK'];

/** One descriptor to count. */
interface Counted {
  readonly index: number;
  readonly limit: ConfiguredLimit;
  readonly rule: Rule | undefined;
  readonly key: string;
  readonly cost: number;
  /** False for shadow-mode limits: their refusals are reported, never enforced. */
  readonly enforce: boolean;
}

/** What a descriptor that needs no counting gets. */
const NO_LIMIT: DescriptorStatus = { code: 'OK', limit_remaining: 0 };
const UNLIMITED: DescriptorStatus = { code: 'OK', limit_remaining: MAX_UINT32 };

/** A limit of 0 requests per unit: every hit is over (the Go service's arithmetic), nothing stored. */
function zeroLimitOutcome(c: Counted): RuleOutcome {
  const windowMs = UNIT_MS[c.limit.unit as Unit];
  return { policy: c.limit.path, allowed: c.cost === 0, limit: 0, remaining: 0, resetMs: windowMs, retryAfterMs: c.cost === 0 ? 0 : Infinity, windowMs };
}

/** Decides `ShouldRateLimit` requests against a loaded config and a store. */
export class RlsService {
  private config: RateLimitConfig;
  private readonly store: Store;
  private readonly algorithm: RlsAlgorithm;
  private readonly headers: HeaderSet;
  private readonly shadowMode: boolean;
  private readonly unknownDomain: 'error' | 'allow';
  private readonly maxDescriptors: number;
  private readonly maxEntries: number;
  private readonly maxValueLength: number;
  private readonly clock: () => number;
  private readonly deciders = new WeakMap<Rule, Decider>();
  private readonly overrides = new Map<string, ConfiguredLimit>();

  constructor(options: RlsServiceOptions) {
    this.config = options.config;
    this.store = options.store;
    this.algorithm = options.algorithm ?? 'gcra';
    this.headers = options.responseHeaders ?? 'both';
    this.shadowMode = options.shadowMode ?? false;
    this.unknownDomain = options.unknownDomain ?? 'error';
    this.maxDescriptors = options.maxDescriptors ?? 64;
    this.maxEntries = options.maxEntries ?? 32;
    this.maxValueLength = options.maxValueLength ?? 1024;
    this.clock = options.clock ?? Date.now;
  }

  /** Swap in a new config (a reload); counters of limits that keep their path keep their state. */
  setConfig(config: RateLimitConfig): void {
    this.config = config;
  }

  /**
   * Decide one request. Synchronous with the memory store, a promise otherwise. Throws (or
   * rejects with) RlsRequestError for a request Envoy's contract forbids, StoreError when the
   * store cannot decide.
   */
  shouldRateLimit(request: RlsRequest): RlsResponse | Promise<RlsResponse> {
    const domain = request.domain ?? '';
    if (domain === '') throw new RlsRequestError('rate limit domain must not be empty');
    const descriptors = request.descriptors ?? [];
    if (descriptors.length === 0) throw new RlsRequestError('rate limit descriptor list must not be empty');
    if (descriptors.length > this.maxDescriptors) {
      throw new RlsRequestError(`${descriptors.length} descriptors exceed the maximum of ${this.maxDescriptors} (rls.maxDescriptors)`);
    }
    const requestHits = Math.max(1, request.hits_addend ?? 0);
    const root = this.config.domains.get(domain);
    if (root === undefined && this.unknownDomain === 'error') {
      throw new RlsRequestError(`unknown domain '${domain.slice(0, 100)}' (configured: ${[...this.config.domains.keys()].join(', ') || 'none'})`);
    }

    const statuses: DescriptorStatus[] = new Array<DescriptorStatus>(descriptors.length);
    const matched: (ConfiguredLimit | undefined)[] = new Array<ConfiguredLimit | undefined>(descriptors.length);
    const keys: string[] = new Array<string>(descriptors.length);
    let replacing: Set<string> | undefined;
    for (let i = 0; i < descriptors.length; i++) {
      const d = descriptors[i] as RlsDescriptor;
      const entries = this.entriesOf(d, i);
      if (root === undefined) continue;
      let limit: ConfiguredLimit | undefined;
      let shared: ReadonlyMap<number, string> | undefined;
      if (d.limit !== undefined && d.limit !== null) {
        limit = this.override(domain, d.limit, i);
      } else {
        const m = findLimit(root, entries);
        limit = m?.limit;
        shared = m?.shared;
      }
      if (limit === undefined) continue;
      for (const r of limit.replaces) (replacing ??= new Set()).add(r);
      matched[i] = limit;
      keys[i] = counterKey(domain, entries, shared);
    }

    const counted: Counted[] = [];
    for (let i = 0; i < descriptors.length; i++) {
      const limit = matched[i];
      if (limit === undefined || (limit.name !== '' && replacing?.has(limit.name) === true)) {
        statuses[i] = NO_LIMIT;
      } else if (limit.unlimited) {
        statuses[i] = UNLIMITED;
      } else {
        counted.push({ index: i, limit, rule: limit.rule, key: keys[i] as string, cost: this.hitsOf(descriptors[i] as RlsDescriptor, requestHits, i), enforce: !limit.shadowMode && !this.shadowMode });
      }
    }
    if (counted.length === 0) return { overall_code: 'OK', statuses, response_headers_to_add: [] };
    if (isSyncStore(this.store)) return this.respond(statuses, counted, this.decideSync(counted));
    return this.decideAsync(counted).then((outcomes) => this.respond(statuses, counted, outcomes));
  }

  /** Validate a descriptor's entries (Envoy's field rules plus Sluice's size bounds). */
  private entriesOf(d: RlsDescriptor, i: number): Entry[] {
    const raw = d.entries ?? [];
    if (raw.length === 0) throw new RlsRequestError(`descriptors[${i}] has no entries`);
    if (raw.length > this.maxEntries) throw new RlsRequestError(`descriptors[${i}] has ${raw.length} entries, more than the maximum of ${this.maxEntries} (rls.maxEntries)`);
    const out: Entry[] = new Array<Entry>(raw.length);
    for (let j = 0; j < raw.length; j++) {
      const e = raw[j] as { key?: string; value?: string };
      const key = e.key ?? '';
      const value = e.value ?? '';
      if (key === '') throw new RlsRequestError(`descriptors[${i}].entries[${j}].key must not be empty`);
      if (key.length > this.maxValueLength || value.length > this.maxValueLength) {
        throw new RlsRequestError(`descriptors[${i}].entries[${j}] is longer than ${this.maxValueLength} characters (rls.maxValueLength)`);
      }
      out[j] = { key, value };
    }
    return out;
  }

  /** The descriptor's own `hits_addend` (0 = check only), else the request's (0 = 1). */
  private hitsOf(d: RlsDescriptor, requestHits: number, i: number): number {
    const own = d.hits_addend;
    if (own === undefined || own === null) return requestHits;
    const n = Number(own.value ?? 0);
    if (!Number.isSafeInteger(n) || n < 0) throw new RlsRequestError(`descriptors[${i}].hits_addend ${String(own.value)} is not an integer from 0 to 2^53-1`);
    return n;
  }

  /** Envoy's `limit` override: counted under its own rule (one per requests_per_unit and unit). */
  private override(domain: string, o: { requests_per_unit?: number; unit?: string | number }, i: number): ConfiguredLimit {
    const unit = typeof o.unit === 'number' ? OVERRIDE_UNITS[o.unit] : o.unit !== undefined && Object.hasOwn(UNIT_MS, o.unit) ? (o.unit as Unit) : undefined;
    if (unit === undefined) throw new RlsRequestError(`descriptors[${i}].limit.unit ${String(o.unit ?? 'UNKNOWN')} is not a known unit`);
    const rpu = o.requests_per_unit ?? 0;
    const id = `${rpu}/${unit}`;
    let limit = this.overrides.get(id);
    if (limit === undefined) {
      // Overrides come from request data: bound the cache so varied values cannot grow it forever.
      if (this.overrides.size >= 1000) this.overrides.clear();
      const path = `${domain}.override:${id}`;
      limit = { path, requestsPerUnit: rpu, unit, unlimited: false, shadowMode: false, name: '', replaces: [], detailedMetric: false, rule: ruleOf(`override:${id}`, rpu, unit, this.algorithm, 'limit') };
      this.overrides.set(id, limit);
    }
    return limit;
  }

  private deciderOf(rule: Rule): Decider {
    let d = this.deciders.get(rule);
    if (d === undefined) {
      if (!isSyncStore(this.store)) throw new TypeError('deciderOf needs a synchronous store');
      d = this.store.prepare([rule]);
      this.deciders.set(rule, d);
    }
    return d;
  }

  /** Memory store: check every descriptor, then consume all of them, in one synchronous turn. */
  private decideSync(counted: readonly Counted[]): RuleOutcome[] {
    const run = (c: Counted, cost: number, peek: boolean): RuleOutcome =>
      c.rule === undefined ? zeroLimitOutcome(c) : this.deciderOf(c.rule)(c.key, cost, peek);
    if (counted.length === 1) return [run(counted[0] as Counted, (counted[0] as Counted).cost, false)];
    const checks = counted.map((c) => run(c, c.cost, true));
    if (counted.some((c, i) => c.enforce && !(checks[i] as RuleOutcome).allowed)) {
      return counted.map((c, i) => ((checks[i] as RuleOutcome).allowed ? run(c, 0, true) : (checks[i] as RuleOutcome)));
    }
    return counted.map((c) => run(c, c.cost, false));
  }

  /** Any other store: the same two steps, each one batch of store calls. */
  private async decideAsync(counted: readonly Counted[]): Promise<RuleOutcome[]> {
    const run = (c: Counted, cost: number, peek: boolean): Promise<RuleOutcome> | RuleOutcome =>
      c.rule === undefined ? zeroLimitOutcome(c) : this.store.decide(c.key, [c.rule], cost, peek).then(outcomeOf);
    if (counted.length === 1) return [await run(counted[0] as Counted, (counted[0] as Counted).cost, false)];
    const checks = await Promise.all(counted.map((c) => run(c, c.cost, true)));
    if (counted.some((c, i) => c.enforce && !(checks[i] as RuleOutcome).allowed)) {
      return Promise.all(counted.map((c, i) => ((checks[i] as RuleOutcome).allowed ? run(c, 0, true) : (checks[i] as RuleOutcome))));
    }
    return Promise.all(counted.map((c) => run(c, c.cost, false)));
  }

  private respond(statuses: DescriptorStatus[], counted: readonly Counted[], outcomes: readonly RuleOutcome[]): RlsResponse {
    let over = false;
    for (let k = 0; k < counted.length; k++) {
      const c = counted[k] as Counted;
      const o = outcomes[k] as RuleOutcome;
      if (!o.allowed && c.enforce) over = true;
      statuses[c.index] = statusOf(c.limit, o);
    }
    return {
      overall_code: over ? 'OVER_LIMIT' : 'OK',
      statuses,
      response_headers_to_add: this.headers === 'none' ? [] : responseHeaders(this.headers, counted, outcomes, over, this.clock()),
    };
  }
}

const outcomeOf = (d: Decision): RuleOutcome => d;

function statusOf(limit: ConfiguredLimit, o: RuleOutcome): DescriptorStatus {
  const current: CurrentLimit = { requests_per_unit: limit.requestsPerUnit, unit: limit.unit as Unit };
  if (limit.name !== '') current.name = limit.name;
  return {
    // A shadow-mode limit reports OK (its refusal only shows in limit_remaining), as in the Go service.
    code: o.allowed || limit.shadowMode ? 'OK' : 'OVER_LIMIT',
    current_limit: current,
    limit_remaining: Math.min(MAX_UINT32, Math.max(0, o.remaining)),
    // Whole seconds, rounded up: Envoy's X-RateLimit-Reset truncates to seconds, and 0 would read as "now".
    duration_until_reset: { seconds: Math.ceil(untilResetMs(o) / 1000), nanos: 0 },
  };
}

/**
 * The counter key of a descriptor: the domain and every entry's key and value (a
 * `share_threshold` wildcard's pattern in place of the value), each prefixed with its length so
 * the key is injective whatever characters keys and values hold.
 */
function counterKey(domain: string, entries: readonly Entry[], shared: ReadonlyMap<number, string> | undefined): string {
  let key = `${domain.length}:${domain}`;
  for (let j = 0; j < entries.length; j++) {
    const e = entries[j] as Entry;
    const value = shared?.get(j) ?? e.value;
    key += `|${e.key.length}:${e.key}${value.length}:${value}`;
  }
  return key;
}
