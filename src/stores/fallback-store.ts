/**
 * Degraded mode for a shared store (Redis): a {@link CircuitBreaker} in front of it and, while it
 * fails, decisions from this process's own {@link MemoryStore} at a share of each limit.
 *
 * With N instances behind a load balancer each holding `limit / N` locally, the fleet admits about
 * the configured limit while Redis is down (exactly that when traffic is spread evenly). Local
 * state starts empty at the switch and is dropped when the shared store answers again: the shared
 * state, which kept what was counted before the outage, is authoritative again at once.
 */
import type { ConcurrencyRule } from '../core/algorithms/concurrency/index.js';
import { algorithmOf, type AlgorithmOption } from '../core/algorithms/registry.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Decision } from '../core/decision.js';
import { SluiceConfigError, StoreError } from '../core/errors.js';
import { compileRule, describe, type Rule } from '../core/rule.js';
import type { Store } from '../core/store.js';
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js';
import { MemoryStore } from './memory-store.js';

/** What the wrapper reports about the shared store's health (for logs and metrics). */
export type StoreHealthEvent =
  /** Decisions switched to the local memory store (the first one the shared store could not take). */
  | { readonly type: 'switch'; readonly to: 'local'; readonly error: StoreError }
  /** The shared store answered again: back to it, after `localMs` and `localDecisions` local decisions. */
  | { readonly type: 'switch'; readonly to: 'shared'; readonly localMs: number; readonly localDecisions: number }
  /** The circuit opened: decisions stop waiting for the shared store; a background probe runs. */
  | { readonly type: 'circuit-open'; readonly error: StoreError; readonly failures: number }
  /** A probe succeeded: the circuit closed after `openMs`. */
  | { readonly type: 'circuit-closed'; readonly openMs: number };

/** A health event as a log line and a metric label. */
export interface HealthEventSummary {
  readonly level: 'warn' | 'info';
  readonly msg: string;
  readonly fields: Record<string, unknown>;
  /** Label value of the `store_health_events_total` metric. */
  readonly kind: 'switch_local' | 'switch_shared' | 'circuit_open' | 'circuit_closed';
}

/** How a {@link StoreHealthEvent} is logged and counted (one wording for the engine and the gateway). */
export function summarizeHealthEvent(e: StoreHealthEvent): HealthEventSummary {
  switch (e.type) {
    case 'switch':
      return e.to === 'local'
        ? { level: 'warn', kind: 'switch_local', msg: 'rate-limit store failed: deciding from local memory', fields: { event: 'store-switch', to: 'local', err: e.error.message } }
        : { level: 'info', kind: 'switch_shared', msg: 'rate-limit store answers again: back to it', fields: { event: 'store-switch', to: 'shared', localMs: e.localMs, localDecisions: e.localDecisions } };
    case 'circuit-open':
      return { level: 'warn', kind: 'circuit_open', msg: 'rate-limit store circuit opened: not waiting for it until a probe succeeds', fields: { event: 'circuit-open', failures: e.failures, err: e.error.message } };
    case 'circuit-closed':
      return { level: 'info', kind: 'circuit_closed', msg: 'rate-limit store circuit closed', fields: { event: 'circuit-closed', openMs: e.openMs } };
  }
}

/** Options of {@link FallbackStore}. */
export interface FallbackStoreOptions {
  /** The shared store (e.g. a RedisStore). Closed by `close()` unless `closeStore` is false. */
  store: Store;
  /**
   * What `decide` does while the shared store fails: `local` (default) decides from this process's
   * memory store at `localShare` of each limit; `error` rejects with {@link StoreError} (at once
   * while the circuit is open) so the caller applies its own allow/deny rule.
   */
  onStoreError?: 'local' | 'error';
  /** Instances sharing the store; the default `localShare` is `1 / expectedInstances`. Default 1. */
  expectedInstances?: number;
  /** Share of each limit (and burst) enforced locally, in (0, 1]. Default `1 / expectedInstances`. */
  localShare?: number;
  /** Circuit breaker settings (consecutive failures before opening, probe interval). */
  breaker?: CircuitBreakerOptions;
  /** Most keys of the local memory store per rule. Default 100 000. */
  localMaxKeys?: number;
  /** Close the shared store in `close()`. Default true. */
  closeStore?: boolean;
  /** Health events (switches, circuit changes). Must not throw; errors are swallowed. */
  onEvent?: (event: StoreHealthEvent) => void;
  clock?: Clock;
}

/** Counters since the wrapper was created. */
export interface FallbackStats {
  /** Shared-store calls that failed (unavailable or timed out), counted toward the breaker. */
  sharedFailures: number;
  /** Calls refused at once because the circuit was open. */
  shortCircuited: number;
  /** Decisions made by the local memory store. */
  localDecisions: number;
  /** Switches to local, and back. */
  switchesToLocal: number;
  switchesToShared: number;
}

/** A probe that writes nothing: a peek of cost 0 on a key no policy uses. */
const PROBE_RULES: readonly Rule[] = [compileRule({ name: 'sluice-health-probe', limit: 1, windowMs: 1000 })];
const PROBE_KEY = '\u0000sluice-health-probe';

const OPEN = (): StoreError => new StoreError('STORE_UNAVAILABLE', 'shared store circuit is open (recent consecutive failures); not waiting for it');

/** Failures that say "the store is not answering", as opposed to a problem with one key or script. */
const isOutage = (err: unknown): err is StoreError => err instanceof StoreError && err.code !== 'STORE_FAILURE';

/**
 * A {@link Store} that puts a circuit breaker in front of another store and, in `local` mode,
 * decides from its own memory store while the shared one fails. Works with any store.
 *
 * @example
 * ```ts
 * const store = new FallbackStore({ store: new RedisStore({ url }), expectedInstances: 4 });
 * const limiter = createLimiter({ limit: 100, windowMs: 60_000, store }); // 25/min locally while Redis is down
 * ```
 */
export class FallbackStore implements Store {
  /** The shared store. */
  readonly shared: Store;
  readonly mode: 'local' | 'error';
  /** Share of each limit enforced locally. */
  readonly localShare: number;
  readonly stats: FallbackStats = { sharedFailures: 0, shortCircuited: 0, localDecisions: 0, switchesToLocal: 0, switchesToShared: 0 };
  private local: MemoryStore;
  private readonly localMaxKeys: number;
  private readonly breaker: CircuitBreaker;
  private readonly clock: Clock;
  private readonly onEvent: ((e: StoreHealthEvent) => void) | undefined;
  private readonly closeStore: boolean;
  private readonly scaled = new WeakMap<Rule, Rule>();
  private readonly scaledLists = new WeakMap<readonly Rule[], readonly Rule[]>();
  private readonly scaledLeases = new WeakMap<ConcurrencyRule, ConcurrencyRule>();
  /** Leases held in the local store (released there, not in the shared one). */
  private readonly localLeases = new Set<string>();
  /** When decisions switched to local (undefined: on the shared store). */
  private localSince: number | undefined;
  private localAtSwitch = 0;

  constructor(options: FallbackStoreOptions) {
    if (options === null || typeof options !== 'object') throw new SluiceConfigError('options', 'must be an object');
    if (typeof options.store?.decide !== 'function') throw new SluiceConfigError('store', 'must implement the Store interface');
    this.shared = options.store;
    const mode = options.onStoreError ?? 'local';
    if (mode !== 'local' && mode !== 'error') throw new SluiceConfigError('onStoreError', `must be "local" or "error", got ${describe(mode)}`);
    this.mode = mode;
    const instances = options.expectedInstances ?? 1;
    if (!Number.isInteger(instances) || instances < 1 || instances > 10_000) {
      throw new SluiceConfigError('expectedInstances', `must be an integer from 1 to 10000, got ${describe(instances)}`);
    }
    const share = options.localShare ?? 1 / instances;
    if (typeof share !== 'number' || !(share > 0) || share > 1) {
      throw new SluiceConfigError('localShare', `must be a number in (0, 1], got ${describe(share)}`);
    }
    this.localShare = share;
    this.clock = options.clock ?? systemClock;
    if (typeof this.clock !== 'function') throw new SluiceConfigError('clock', 'must be a function returning epoch ms');
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function') throw new SluiceConfigError('onEvent', 'must be a function');
    this.onEvent = options.onEvent;
    this.closeStore = options.closeStore ?? true;
    this.localMaxKeys = options.localMaxKeys ?? 100_000;
    this.local = this.freshLocal();
    this.breaker = new CircuitBreaker(
      options.breaker ?? {},
      async () => {
        await this.shared.decide(PROBE_KEY, PROBE_RULES, 0, true);
        this.backToShared();
      },
      {
        onOpen: (error, failures) => this.emit({ type: 'circuit-open', error: error as StoreError, failures }),
        onClose: (openMs) => this.emit({ type: 'circuit-closed', openMs }),
      },
      this.clock,
    );
  }

  /** True while the circuit is open (decisions do not wait for the shared store). */
  get circuitOpen(): boolean {
    return this.breaker.isOpen;
  }

  /** True while decisions are taken locally (between a switch to local and the switch back). */
  get usingLocal(): boolean {
    return this.localSince !== undefined;
  }

  private emit(e: StoreHealthEvent): void {
    try {
      this.onEvent?.(e);
    } catch {
      // observability never fails a decision
    }
  }

  /** Run a shared-store call through the breaker. */
  private async guarded<T>(call: () => Promise<T>): Promise<T> {
    if (this.breaker.isOpen) {
      this.stats.shortCircuited++;
      throw OPEN();
    }
    let result: T;
    try {
      result = await call();
    } catch (err) {
      if (isOutage(err)) {
        this.stats.sharedFailures++;
        this.breaker.failure(err);
      }
      throw err;
    }
    this.breaker.success();
    this.backToShared();
    return result;
  }

  private backToShared(): void {
    if (this.localSince === undefined) return;
    const localMs = this.clock() - this.localSince;
    const localDecisions = this.stats.localDecisions - this.localAtSwitch;
    this.localSince = undefined;
    this.stats.switchesToShared++;
    // Local counts are a stand-in for the outage only: the next outage starts from a clean slate.
    this.local = this.freshLocal();
    this.localLeases.clear();
    this.emit({ type: 'switch', to: 'shared', localMs, localDecisions });
  }

  private freshLocal(): MemoryStore {
    return new MemoryStore({ clock: this.clock, maxKeys: this.localMaxKeys });
  }

  private toLocal(error: StoreError): void {
    if (this.localSince !== undefined) return;
    this.localSince = this.clock();
    this.localAtSwitch = this.stats.localDecisions;
    this.stats.switchesToLocal++;
    this.emit({ type: 'switch', to: 'local', error });
  }

  private scaleRule(rule: Rule): Rule {
    let r = this.scaled.get(rule);
    if (r === undefined) {
      const limit = Math.max(1, Math.floor(rule.limit * this.localShare));
      const burst = Math.max(1, Math.floor(rule.burst * this.localShare));
      r =
        // A block (internal algorithm) is no share of a limit: it holds as it is.
        this.localShare === 1 || algorithmOf(rule).internal === true
          ? rule
          : compileRule({ name: rule.name, algorithm: rule.algorithm as AlgorithmOption, limit, windowMs: rule.windowMs, ...(rule.algorithm === 'gcra' ? { burst } : {}) });
      this.scaled.set(rule, r);
    }
    return r;
  }

  private scaleRules(rules: readonly Rule[]): readonly Rule[] {
    let r = this.scaledLists.get(rules);
    if (r === undefined) {
      r = rules.map((x) => this.scaleRule(x));
      this.scaledLists.set(rules, r);
    }
    return r;
  }

  private scaleLease(rule: ConcurrencyRule): ConcurrencyRule {
    let r = this.scaledLeases.get(rule);
    if (r === undefined) {
      r = { ...rule, limit: Math.max(1, Math.floor(rule.limit * this.localShare)) };
      this.scaledLeases.set(rule, r);
    }
    return r;
  }

  /** Decide on the shared store only, through the breaker: rejects with StoreError while it fails. */
  decideShared(key: string, rules: readonly Rule[], cost: number, peek = false): Promise<Decision> {
    return this.guarded(() => this.shared.decide(key, rules, cost, peek));
  }

  /** Decide from this process's memory store at `localShare` of each limit. */
  decideLocal(key: string, rules: readonly Rule[], cost: number, peek = false): Promise<Decision> {
    this.stats.localDecisions++;
    return this.local.decide(key, this.scaleRules(rules), cost, peek);
  }

  /** Decide on the shared store; when it fails (or the circuit is open), decide locally. */
  async decideOrLocal(key: string, rules: readonly Rule[], cost: number, peek = false): Promise<Decision> {
    try {
      return await this.decideShared(key, rules, cost, peek);
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      this.toLocal(err);
      return this.decideLocal(key, rules, cost, peek);
    }
  }

  decide(key: string, rules: readonly Rule[], cost: number, peek = false): Promise<Decision> {
    return this.mode === 'local' ? this.decideOrLocal(key, rules, cost, peek) : this.decideShared(key, rules, cost, peek);
  }

  /**
   * Charge on the shared store, through the breaker; while it fails (or the circuit is open), in
   * `local` mode charge the local store at `localShare` of each limit, as `decide` does.
   */
  async charge(key: string, rules: readonly Rule[], cost: number): Promise<Decision> {
    return this.chargeOrLocal(key, rules, cost, this.mode === 'local');
  }

  /**
   * {@link charge} charging the local store when the shared one fails whatever this store's mode
   * (`local`: true): the engine's counterpart of `decideOrLocal` for `onStoreError: 'local'` policies.
   */
  async chargeOrLocal(key: string, rules: readonly Rule[], cost: number, local = true): Promise<Decision> {
    try {
      return await this.guarded(() => this.shared.charge(key, rules, cost));
    } catch (err) {
      if (!local || !(err instanceof StoreError)) throw err;
      this.toLocal(err);
      this.stats.localDecisions++;
      return this.local.charge(key, this.scaleRules(rules), cost);
    }
  }

  async reset(key: string, rules: readonly Rule[]): Promise<void> {
    await this.local.reset(key, this.scaleRules(rules));
    await this.guarded(() => this.shared.reset(key, rules));
  }

  async acquire(key: string, rule: ConcurrencyRule, cost: number, leaseId: string): Promise<Decision> {
    try {
      return await this.guarded(() => this.shared.acquire(key, rule, cost, leaseId));
    } catch (err) {
      if (this.mode !== 'local' || !(err instanceof StoreError)) throw err;
      this.toLocal(err);
      this.stats.localDecisions++;
      const d = await this.local.acquire(key, this.scaleLease(rule), cost, leaseId);
      if (d.allowed) this.localLeases.add(leaseId);
      return d;
    }
  }

  async release(key: string, rule: ConcurrencyRule, leaseId: string): Promise<void> {
    if (this.localLeases.delete(leaseId)) return this.local.release(key, this.scaleLease(rule), leaseId);
    return this.guarded(() => this.shared.release(key, rule, leaseId));
  }

  /** Stop the probe and, unless `closeStore` is false, close the shared store. */
  async close(): Promise<void> {
    this.breaker.stop();
    await this.local.close();
    if (this.closeStore) await this.shared.close();
  }
}
