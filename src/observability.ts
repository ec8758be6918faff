/**
 * `sluice/observability`: request logs, Prometheus metrics, analytics (memory or Redis), near-limit
 * warnings, the admin routes with the dashboard, and OpenTelemetry metrics and spans (through
 * `@opentelemetry/api`, no-op until an SDK is registered). The gateway builds one {@link createObserver} and
 * calls `record(event)` once per finished request; an app using the middleware does the same with
 * {@link eventFromPolicy}. Every name is listed in docs/api.md.
 */
export type { Outcome, RequestEvent } from './observability/events.js';
export { createObserver, type Observer, type ObserverOptions } from './observability/observer.js';
export { createRequestLogger, type RequestLogger, type RequestLoggerOptions } from './observability/logger.js';
export { createMetrics, type MetricsOptions, type SluiceMetrics } from './observability/metrics.js';
export {
  MemoryAnalytics,
  type AnalyticsStore,
  type AnalyticsSummary,
  type ConsumerDetail,
  type LiveSeries,
  type WindowName,
} from './observability/analytics.js';
export { RedisAnalytics, type RedisAnalyticsOptions } from './observability/redis-analytics.js';
export { WarningEmitter, type NearLimitWarning, type WarningOptions } from './observability/warnings.js';
export { createObservabilityRoutes, type AdminHandler, type ObservabilityRoutesOptions } from './observability/admin-routes.js';
export { eventFromPolicy, type PolicyEventInput } from './observability/from-policy.js';
export type { ObservabilityConfig } from './observability/config.js';
export { createOtelRecorder, OTEL_SCOPE, type OtelRecorder } from './observability/otel.js';
