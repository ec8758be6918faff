/**
 * `sluice/observability`: request logs, Prometheus metrics, analytics (memory or Redis), near-limit
 * warnings, the admin routes with the dashboard, the `sluice report` text report, and
 * OpenTelemetry metrics and spans (through `@opentelemetry/api`, no-op until an SDK is registered).
 */
export * from './observability/index.js';
export { createOtelRecorder, OTEL_SCOPE, type OtelRecorder } from './observability/otel.js';
