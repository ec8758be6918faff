/**
 * The Observer: the one object the gateway talks to. `record(event)` is synchronous and cheap:
 * it bumps cached Prometheus children, maybe writes one log line (pino buffers it), folds the
 * event into the analytics batch and checks the warning threshold. Analytics reach their store
 * in the background every `flushIntervalMs` (one Redis pipeline per flush).
 */
import type { Cluster, Redis } from 'ioredis';
import { SluiceConfigError } from '../core/errors.js';
import { AnalyticsRecorder, MemoryAnalytics, type AnalyticsStore } from './analytics.js';
import type { RequestEvent } from './events.js';
import { createRequestLogger, type RequestLogger, type RequestLoggerOptions } from './logger.js';
import { createMetrics, type MetricsOptions, type SluiceMetrics } from './metrics.js';
import { createOtelRecorder } from './otel.js';
import { RedisAnalytics } from './redis-analytics.js';
import { WarningEmitter, type NearLimitWarning, type WarningOptions } from './warnings.js';

/** Options of {@link createObserver}. */
export interface ObserverOptions {
  /** Request logs; `false` for none. */
  logs?: RequestLoggerOptions | false;
  /** Prometheus metrics options. */
  metrics?: MetricsOptions;
  /**
   * Where analytics live. Default: memory (this process only). `{ redis }` shares them between
   * instances; or pass any {@link AnalyticsStore}.
   */
  analytics?: { retentionMs?: number; redis?: Redis | Cluster; prefix?: string } | AnalyticsStore;
  /** Early-warning options (threshold default 0.8, webhook). With Redis analytics, warnings are deduplicated across instances through the same Redis. */
  warnings?: Omit<WarningOptions, 'logger'>;
  /** How often the analytics batch is flushed. Default 1000 ms. */
  flushIntervalMs?: number;
  /** Most distinct consumers/IPs tracked per flush. Default 10 000. */
  maxDistinct?: number;
  clock?: () => number;
  /** Record decisions as OpenTelemetry metrics and spans (no-op until the application registers an SDK). Default true. */
  openTelemetry?: boolean;
}

/** What the gateway and the admin routes use. */
export interface Observer {
  /** Count, log, and check one finished request. Synchronous; never throws. */
  record(event: RequestEvent): void;
  /** Push the pending analytics batch to the store now. */
  flush(): Promise<void>;
  /** Flush, drain warnings, close the log stream. */
  close(): Promise<void>;
  readonly metrics: SluiceMetrics;
  readonly analytics: AnalyticsStore;
  readonly warnings: WarningEmitter;
  readonly logger?: RequestLogger;
  /** Events recorded, and analytics flushes that failed (their batch is lost). */
  readonly stats: { recorded: number; flushErrors: number };
}

function isStore(a: unknown): a is AnalyticsStore {
  return typeof (a as AnalyticsStore | undefined)?.apply === 'function' && typeof (a as AnalyticsStore).summary === 'function';
}

/** Build an observer. Every option is validated here. */
export function createObserver(options: ObserverOptions = {}): Observer {
  const clock = options.clock ?? Date.now;
  const interval = options.flushIntervalMs ?? 1000;
  if (!Number.isInteger(interval) || interval < 10) throw new SluiceConfigError('flushIntervalMs', `must be an integer >= 10, got ${JSON.stringify(interval)}`);
  const logger = options.logs === false ? undefined : createRequestLogger(options.logs ?? {});
  const metrics = createMetrics(options.metrics ?? {});
  if (logger !== undefined) metrics.trackLogWrites(logger.stats);
  const a = options.analytics;
  const analytics: AnalyticsStore = isStore(a)
    ? a
    : a?.redis
      ? new RedisAnalytics({ client: a.redis, prefix: a.prefix, retentionMs: a.retentionMs, clock })
      : new MemoryAnalytics({ retentionMs: a?.retentionMs, clock });
  const shared = !isStore(a) && a?.redis ? { client: a.redis, prefix: a.prefix } : undefined;
  const warnings = new WarningEmitter({
    dedupe: shared,
    ...(options.warnings ?? {}),
    logger,
    onWarning: (w: NearLimitWarning) => {
      metrics.nearLimit(w.route, w.policy);
      options.warnings?.onWarning?.(w);
    },
    onDelivery: (r) => {
      metrics.webhook(r);
      options.warnings?.onDelivery?.(r);
    },
  });
  const recorder = new AnalyticsRecorder({ nearLimitThreshold: warnings.threshold, maxDistinct: options.maxDistinct });
  const stats = { recorded: 0, flushErrors: 0 };
  const otel = options.openTelemetry === false ? undefined : createOtelRecorder();

  let flushing: Promise<void> | undefined;
  const flushOnce = async () => {
    if (!recorder.pending) return;
    const batch = recorder.take();
    try {
      await analytics.apply(batch);
    } catch (err) {
      stats.flushErrors++;
      logger?.warn({ error: err instanceof Error ? err.message : String(err) }, 'analytics flush failed; batch dropped');
    }
  };
  const flush = async (): Promise<void> => {
    while (flushing) await flushing;
    flushing = flushOnce().finally(() => (flushing = undefined));
    await flushing;
  };
  const timer = setInterval(() => {
    if (!flushing) void flush();
  }, interval);
  timer.unref();

  return {
    metrics,
    analytics,
    warnings,
    logger,
    stats,
    record(e) {
      try {
        stats.recorded++;
        metrics.observe(e);
        logger?.log(e);
        recorder.add(e);
        warnings.check(e);
        otel?.record(e);
      } catch (err) {
        // Observability must never fail a request.
        logger?.warn({ error: err instanceof Error ? err.message : String(err) }, 'observer.record failed');
      }
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
      await warnings.close();
      await analytics.close();
      await logger?.flush();
    },
  };
}
