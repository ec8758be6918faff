/**
 * Prometheus metrics (prom-client) on a registry of their own, so embedding Sluice never pollutes
 * the host application's default registry. Labels are low-cardinality only (route, policy,
 * outcome, status): consumers and IPs belong in analytics, not in time series. Even so a guard
 * caps the distinct values a label may take; the rest are counted under `(other)`.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { SluiceConfigError } from '../core/errors.js';
import { outcomeOf, type RequestEvent } from './events.js';
import { truncate } from './sanitize.js';

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** Registry to register on. Default: a new one. */
  registry?: Registry;
  /** Metric name prefix. Default `sluice_`. */
  prefix?: string;
  /** Most distinct values one label may take before new ones are folded into `(other)`. Default 200. */
  maxLabelValues?: number;
  /** Also collect Node process metrics (CPU, heap, event loop lag). Default false. */
  processMetrics?: boolean;
}

/** The metrics the observer updates. */
export interface SluiceMetrics {
  readonly registry: Registry;
  /** Count one request. */
  observe(event: RequestEvent): void;
  /** Count one near-limit crossing (one per window per consumer and policy). */
  nearLimit(route: string, policy: string): void;
  /** Count a webhook delivery result. */
  webhook(result: 'delivered' | 'failed' | 'dropped'): void;
  /** The exposition text for `GET /metrics`. */
  text(): Promise<string>;
}

const OTHER = '(other)';

/** A per-label guard: the first `max` distinct values pass, later ones become `(other)`. */
class LabelGuard {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}
  get(v: string): string {
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.max) return OTHER;
    const t = truncate(v, 128);
    this.seen.add(t);
    return t;
  }
}

/** Build the metrics. */
export function createMetrics(options: MetricsOptions = {}): SluiceMetrics {
  const registry = options.registry ?? new Registry();
  const p = options.prefix ?? 'sluice_';
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(p)) throw new SluiceConfigError('prefix', `must be a valid Prometheus metric name prefix, got ${JSON.stringify(p)}`);
  const max = options.maxLabelValues ?? 200;
  if (!Number.isInteger(max) || max < 1) throw new SluiceConfigError('maxLabelValues', `must be a positive integer, got ${JSON.stringify(max)}`);
  if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix: p });

  const decisions = new Counter({
    name: `${p}decisions_total`,
    help: 'Rate-limit decisions by route, deciding policy and outcome (allowed, limited, shadow_limited, denied, store_error).',
    labelNames: ['route', 'policy', 'outcome'] as const,
    registers: [registry],
  });
  const responses = new Counter({
    name: `${p}responses_total`,
    help: 'Responses by route and status code.',
    labelNames: ['route', 'status'] as const,
    registers: [registry],
  });
  const storeLatency = new Histogram({
    name: `${p}store_latency_seconds`,
    help: 'Time spent in the rate-limit store per decision.',
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [registry],
  });
  const storeErrors = new Counter({
    name: `${p}store_errors_total`,
    help: 'Decisions where the store failed (timeout, unavailable, script error).',
    labelNames: ['route'] as const,
    registers: [registry],
  });
  const nearLimit = new Counter({
    name: `${p}near_limit_total`,
    help: 'Consumers crossing the warning share of a limit (counted once per window per consumer and policy).',
    labelNames: ['route', 'policy'] as const,
    registers: [registry],
  });
  const webhooks = new Counter({
    name: `${p}warning_webhooks_total`,
    help: 'Near-limit webhook deliveries by result (delivered, failed after retries, dropped because the queue was full).',
    labelNames: ['result'] as const,
    registers: [registry],
  });

  const routes = new LabelGuard(max);
  const policies = new LabelGuard(max);
  // Children cached per label combination: `labels()` hashes its arguments on every call.
  const decisionChildren = new Map<string, Counter.Internal>();
  const responseChildren = new Map<string, Counter.Internal>();
  const errorChildren = new Map<string, Counter.Internal>();

  return {
    registry,
    observe(e) {
      const route = routes.get(e.route);
      const policy = e.policy === undefined ? '' : policies.get(e.policy);
      const outcome = outcomeOf(e);
      const dk = `${route}\u0000${policy}\u0000${outcome}`;
      let d = decisionChildren.get(dk);
      if (!d) decisionChildren.set(dk, (d = decisions.labels(route, policy, outcome)));
      d.inc();
      const status = e.status >= 100 && e.status <= 599 ? e.status : 0;
      const rk = `${route}\u0000${status}`;
      let r = responseChildren.get(rk);
      if (!r) responseChildren.set(rk, (r = responses.labels(route, String(status))));
      r.inc();
      if (e.storeLatencyMs !== undefined && e.storeLatencyMs >= 0) storeLatency.observe(e.storeLatencyMs / 1000);
      if (e.storeError !== undefined) {
        let c = errorChildren.get(route);
        if (!c) errorChildren.set(route, (c = storeErrors.labels(route)));
        c.inc();
      }
    },
    nearLimit(route, policy) {
      nearLimit.labels(routes.get(route), policies.get(policy)).inc();
    },
    webhook(result) {
      webhooks.labels(result).inc();
    },
    text() {
      return registry.metrics();
    },
  };
}
