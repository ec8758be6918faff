/**
 * Observability: request logs, Prometheus metrics, analytics (memory or Redis), near-limit
 * warnings, the admin routes and the dashboard. The gateway builds one {@link createObserver} and
 * calls `record(event)` once per finished request.
 */
export type { Outcome, RequestEvent } from './events.js';
export { outcomeOf, whoOf } from './events.js';
export { createObserver, type Observer, type ObserverOptions } from './observer.js';
export { createRequestLogger, type RequestLogger, type RequestLoggerOptions } from './logger.js';
export { createMetrics, type MetricsOptions, type SluiceMetrics } from './metrics.js';
export {
  AnalyticsRecorder,
  MemoryAnalytics,
  parseWindow,
  WINDOWS,
  type AnalyticsStore,
  type AnalyticsSummary,
  type ConsumerDetail,
  type LiveSeries,
  type WindowName,
} from './analytics.js';
export { RedisAnalytics, type RedisAnalyticsOptions } from './redis-analytics.js';
export { WarningEmitter, type NearLimitWarning, type WarningOptions } from './warnings.js';
export { createObservabilityRoutes, safeEqual, type AdminHandler, type ObservabilityRoutesOptions } from './admin-routes.js';
export { fetchSummary, formatReport } from './report.js';
export { eventFromPolicy, type PolicyEventInput } from './from-policy.js';
export { observabilityConfigSchema, observerFromConfig, type ObservabilityConfig } from './config.js';
export { runReport, type ReportOptions } from './report.js';
