/**
 * OpenTelemetry, the way a library integrates: through `@opentelemetry/api` only. Without an SDK
 * registered by the application every call here is the API's no-op; with one, each request the
 * observer records becomes
 *
 * - a `sluice.decisions` counter increment (`sluice.route`, `sluice.policy`, `sluice.outcome`),
 * - for refusals, a `sluice.refusals` increment (`sluice.route`, `sluice.policy`,
 *   `http.response.status_code`),
 * - a `sluice.rate_limit` span from the request's arrival to its end, child of the active span,
 *   with the decision's limit, remaining and retry-after; store failures set the span status to
 *   ERROR (a 429 is the limiter working, not an error).
 *
 * Labels are the low-cardinality ones Prometheus uses; consumer ids go on spans, never on metrics.
 */
import { readFileSync } from 'node:fs';
import {
  createNoopMeter,
  metrics,
  ProxyTracerProvider,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Counter,
  type MeterProvider,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { outcomeOf, type RequestEvent } from './events.js';

/** Instrumentation scope name (meter and tracer). */
export const OTEL_SCOPE = 'sluice';

const version = ((): string | undefined => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
})();

/** Records request events as OpenTelemetry metrics and spans. */
export interface OtelRecorder {
  /** Count and trace one finished request. Never throws. */
  record(event: RequestEvent): void;
}

interface Instruments {
  meterProvider: MeterProvider;
  tracerProvider: TracerProvider;
  /** Undefined while the global MeterProvider is the API's no-op. */
  decisions?: Counter;
  refusals?: Counter;
  /** Undefined while no TracerProvider is registered. */
  tracer?: Tracer;
}

/**
 * Create a recorder. Instruments follow the global providers: an SDK registered after this call
 * (or replaced later) still receives the measurements. While no SDK is registered, a request costs
 * two identity checks: no attributes are built and no no-op span is created.
 */
export function createOtelRecorder(): OtelRecorder {
  let cache: Instruments | undefined;
  const current = (): Instruments => {
    const meterProvider = metrics.getMeterProvider();
    const global = trace.getTracerProvider();
    // The global tracer provider is a proxy whose delegate is the SDK's provider once one is registered.
    const tracerProvider = global instanceof ProxyTracerProvider ? global.getDelegate() : global;
    if (cache?.meterProvider === meterProvider && cache.tracerProvider === tracerProvider) return cache;
    const next: Instruments = { meterProvider, tracerProvider };
    const meter = meterProvider.getMeter(OTEL_SCOPE, version);
    if (meter !== createNoopMeter()) {
      next.decisions = meter.createCounter('sluice.decisions', { description: 'Rate-limit decisions by route, policy and outcome', unit: '{decision}' });
      next.refusals = meter.createCounter('sluice.refusals', { description: 'Requests refused by the rate limiter (429, 403, 401, 503)', unit: '{request}' });
    }
    const tracer = global instanceof ProxyTracerProvider ? global.getDelegateTracer(OTEL_SCOPE, version) : global.getTracer(OTEL_SCOPE, version);
    if (tracer !== undefined) next.tracer = tracer;
    cache = next;
    return next;
  };

  return {
    record(e) {
      try {
        const { decisions, refusals, tracer } = current();
        if (decisions === undefined && tracer === undefined) return;
        const outcome = outcomeOf(e);
        const labels: Attributes = { 'sluice.route': e.route, 'sluice.outcome': outcome };
        if (e.policy !== undefined) labels['sluice.policy'] = e.policy;
        decisions?.add(1, labels);
        if (!e.allowed) refusals?.add(1, { 'sluice.route': e.route, 'sluice.policy': e.policy ?? '', 'http.response.status_code': e.status });
        if (tracer === undefined) return;

        const span = tracer.startSpan('sluice.rate_limit', { kind: SpanKind.INTERNAL, startTime: e.time });
        if (span.isRecording()) {
          const d = e.decision;
          span.setAttributes({
            ...labels,
            'sluice.allowed': e.allowed,
            'sluice.request_id': e.requestId,
            'http.request.method': e.method,
            'http.response.status_code': e.status,
            ...(e.consumer !== undefined ? { 'sluice.consumer': e.consumer } : {}),
            ...(e.tier !== undefined ? { 'sluice.tier': e.tier } : {}),
            ...(d !== undefined ? { 'sluice.limit': d.limit, 'sluice.remaining': d.remaining, 'sluice.retry_after_ms': Number.isFinite(d.retryAfterMs) ? d.retryAfterMs : -1 } : {}),
            ...(e.shadow ? { 'sluice.shadow_limited': true } : {}),
          });
          if (e.storeError !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: `rate-limit store failed: ${e.storeError}` });
        }
        span.end(e.time + e.durationMs);
      } catch {
        // Observability never fails a request; a broken SDK costs its own data only.
      }
    },
  };
}
