/**
 * Prometheus metrics on a prom-client registry of their own, so embedding Sluice never pollutes
 * the host application's default registry. Labels are low-cardinality only (route, policy,
 * outcome, status): consumers and IPs belong in analytics, not in time series. Even so a guard
 * caps the distinct values a label may take; the rest are counted under `(other)`.
 *
 * Why not prom-client's Counter/Histogram on the request path: their `inc`/`observe` hash the
 * label object on every call (~1 µs per request for our set). Here the request path bumps a plain
 * number in a Map entry cached per label combination; prom-client's registry formats the values
 * only when `/metrics` is scraped (the objects below implement its metric `get()` contract).
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import { SluiceConfigError } from '../core/errors.js';
import type { HealthEventSummary } from '../stores/fallback-store.js';
import { outcomeOf, type RequestEvent } from './events.js';
import type { LogWriteStats } from './log-destination.js';
import { printable } from './sanitize.js';

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
  /**
   * Count a change of the shared store's health (FallbackStore events): a switch to local
   * decisions or back, the circuit opening or closing. Also sets `store_circuit_open`.
   */
  storeHealth(event: StoreHealthKind): void;
  /** Export the request log's failed writes and dropped lines (read at scrape time). */
  trackLogWrites(stats: LogWriteStats): void;
  /** The exposition text for `GET /metrics`. */
  text(): Promise<string>;
}

/** Label values of `store_health_events_total`. */
export type StoreHealthKind = HealthEventSummary['kind'];

const OTHER = '(other)';

/** A per-label guard: the first `max` distinct values pass, later ones become `(other)`. */
class LabelGuard {
  private readonly seen = new Map<string, string>();
  constructor(private readonly max: number) {}
  get(v: string): string {
    const hit = this.seen.get(v);
    if (hit !== undefined) return hit;
    if (this.seen.size >= this.max) return OTHER;
    const t = printable(v, 128);
    this.seen.set(v, t);
    return t;
  }
}

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** A counter family (or, with type `gauge`, a gauge family): one number per label combination. */
class FastCounter {
  readonly aggregator = 'sum';
  private readonly cells = new Map<string, Sample>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    readonly type: 'counter' | 'gauge' = 'counter',
  ) {}
  /** The cell for these label values (cache it: the key is built once). */
  cell(...values: string[]): Sample {
    const k = values.join('\u0000');
    let c = this.cells.get(k);
    if (!c) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]!));
      this.cells.set(k, (c = { labels, value: 0 }));
    }
    return c;
  }
  get() {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: [...this.cells.values()].map((c) => ({ labels: c.labels, value: c.value })) };
  }
}

/** An unlabelled counter whose value is read from elsewhere when scraped. */
class ReadCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly read: () => number,
  ) {}
  get() {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: [{ labels: {}, value: this.read() }] };
  }
}

/** An unlabelled histogram with fixed buckets. */
class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {
    this.counts = bounds.map(() => 0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
  get() {
    const values: Sample[] = [];
    let acc = 0;
    this.bounds.forEach((le, i) => {
      acc += this.counts[i]!;
      values.push({ labels: { le }, value: acc, metricName: `${this.name}_bucket` });
    });
    values.push({ labels: { le: '+Inf' }, value: this.count, metricName: `${this.name}_bucket` });
    values.push({ labels: {}, value: this.sum, metricName: `${this.name}_sum` });
    values.push({ labels: {}, value: this.count, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
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

  const decisions = new FastCounter(
    `${p}decisions_total`,
    'Rate-limit decisions by route, deciding policy and outcome (allowed, limited, shadow_limited, denied, store_error).',
    ['route', 'policy', 'outcome'],
  );
  const responses = new FastCounter(`${p}responses_total`, 'Responses by route and status code.', ['route', 'status']);
  const storeLatency = new FastHistogram(`${p}store_latency_seconds`, 'Time spent in the rate-limit store per decision.', [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  ]);
  const storeErrors = new FastCounter(`${p}store_errors_total`, 'Decisions where the store failed (timeout, unavailable, script error).', ['route']);
  const nearLimit = new FastCounter(
    `${p}near_limit_total`,
    'Consumers crossing the warning share of a limit (counted once per window per consumer and policy).',
    ['route', 'policy'],
  );
  const webhooks = new FastCounter(
    `${p}warning_webhooks_total`,
    'Near-limit webhook deliveries by result (delivered, failed after retries, dropped because the queue was full).',
    ['result'],
  );
  const storeHealth = new FastCounter(
    `${p}store_health_events_total`,
    'Changes of the shared store health: switch_local (decisions moved to the local memory store), switch_shared (back), circuit_open, circuit_closed.',
    ['event'],
  );
  const circuitOpen = new FastCounter(`${p}store_circuit_open`, '1 while the circuit breaker in front of the shared store is open, else 0.', [], 'gauge');
  circuitOpen.cell().value = 0;
  let logStats: LogWriteStats = { writeErrors: 0, droppedLines: 0 };
  const logWriteErrors = new ReadCounter(`${p}log_write_errors_total`, 'Request-log writes that failed (full disk, I/O error); their lines were dropped.', () => logStats.writeErrors);
  const logDropped = new ReadCounter(`${p}log_lines_dropped_total`, 'Request-log lines dropped (failed writes, or the write backlog was full).', () => logStats.droppedLines);
  for (const m of [decisions, responses, storeLatency, storeErrors, nearLimit, webhooks, logWriteErrors, logDropped, storeHealth, circuitOpen]) registry.registerMetric(m as never);

  const routes = new LabelGuard(max);
  const policies = new LabelGuard(max);
  // Per route → policy → (outcome, status): the two cells one request bumps. Nested maps keyed by
  // the event's own strings avoid building a composite key string per request.
  const hot = new Map<string, Map<string, Map<number, [Sample, Sample]>>>();
  const OUTCOMES = { allowed: 0, limited: 1, shadow_limited: 2, denied: 3, store_error: 4 } as const;
  let hotSize = 0;

  return {
    registry,
    observe(e) {
      const outcome = outcomeOf(e);
      const status = e.status >= 100 && e.status <= 599 ? e.status : 0;
      const pk = e.policy ?? '';
      let byPolicy = hot.get(e.route);
      if (!byPolicy) hot.set(e.route, (byPolicy = new Map()));
      let byCode = byPolicy.get(pk);
      if (!byCode) byPolicy.set(pk, (byCode = new Map()));
      const code = OUTCOMES[outcome] * 1000 + status;
      let cells = byCode.get(code);
      if (!cells) {
        const route = routes.get(e.route);
        const policy = e.policy === undefined ? '' : policies.get(e.policy);
        cells = [decisions.cell(route, policy, outcome), responses.cell(route, String(status))];
        // The cache only maps to guarded cells; reset it rather than grow if hostile values churn.
        if (++hotSize > 10_000) {
          hot.clear();
          hotSize = 0;
        }
        byCode.set(code, cells);
      }
      cells[0].value++;
      cells[1].value++;
      if (e.storeLatencyMs !== undefined && e.storeLatencyMs >= 0) storeLatency.observe(e.storeLatencyMs / 1000);
      if (e.storeError !== undefined) storeErrors.cell(routes.get(e.route)).value++;
    },
    nearLimit(route, policy) {
      nearLimit.cell(routes.get(route), policies.get(policy)).value++;
    },
    webhook(result) {
      webhooks.cell(result).value++;
    },
    storeHealth(event) {
      storeHealth.cell(event).value++;
      if (event === 'circuit_open') circuitOpen.cell().value = 1;
      else if (event === 'circuit_closed') circuitOpen.cell().value = 0;
    },
    trackLogWrites(stats) {
      logStats = stats;
    },
    text() {
      return registry.metrics();
    },
  };
}
