/**
 * `sluice/observability`: request logs, Prometheus metrics, analytics (memory or Redis), near-limit
 * warnings, the admin routes with the dashboard, and the `sluice report` text report.
 */
export * from './observability/index.js';
