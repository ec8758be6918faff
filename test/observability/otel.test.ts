/**
 * OpenTelemetry: the observer turns each recorded request into `sluice.decisions` /
 * `sluice.refusals` counters and a `sluice.rate_limit` span, through `@opentelemetry/api` only,
 * read back here with the SDK's in-memory exporters. Without an SDK nothing is recorded and
 * nothing fails.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { metrics, trace, SpanStatusCode } from '@opentelemetry/api';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type DataPoint } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createObserver } from '../../src/observability/observer.js';
import type { RequestEvent } from '../../src/observability/events.js';
import type { Decision } from '../../src/core/decision.js';

const T0 = Date.UTC(2026, 0, 1);

function decision(allowed: boolean): Decision {
  return { allowed, limit: 5, remaining: allowed ? 2 : 0, resetMs: 60_000, retryAfterMs: allowed ? 0 : 12_000, windowMs: 60_000, policy: 'per-ip', policies: [], key: 'ip:203.0.113.7', cost: 1 };
}

function event(over: Partial<RequestEvent> = {}): RequestEvent {
  return { time: T0, requestId: 'req-1', route: 'hello', method: 'GET', path: '/hello', status: 200, ip: '203.0.113.7', policy: 'per-ip', allowed: true, durationMs: 4, decision: decision(true), ...over };
}

function sdk() {
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  metrics.setGlobalMeterProvider(meterProvider);
  trace.setGlobalTracerProvider(tracerProvider);
  return {
    spans,
    /** Data points of one metric after a collection. */
    async points(name: string): Promise<DataPoint<number>[]> {
      await reader.forceFlush();
      const all = metricExporter.getMetrics().flatMap((r) => r.scopeMetrics.filter((s) => s.scope.name === 'sluice').flatMap((s) => s.metrics));
      const m = all.filter((x) => x.descriptor.name === name).at(-1);
      return (m?.dataPoints ?? []) as DataPoint<number>[];
    },
  };
}

afterEach(() => {
  metrics.disable();
  trace.disable();
});

describe('OpenTelemetry through the observer', () => {
  it('counts decisions by route, policy and outcome, and refusals with their status', async () => {
    const otel = sdk();
    const observer = createObserver({ logs: false });
    observer.record(event());
    observer.record(event({ requestId: 'req-2' }));
    observer.record(event({ requestId: 'req-3', status: 429, allowed: false, decision: decision(false) }));
    const decisions = await otel.points('sluice.decisions');
    const byOutcome = Object.fromEntries(decisions.map((p) => [String(p.attributes['sluice.outcome']), p.value]));
    expect(byOutcome).toEqual({ allowed: 2, limited: 1 });
    expect(decisions.every((p) => p.attributes['sluice.route'] === 'hello' && p.attributes['sluice.policy'] === 'per-ip')).toBe(true);
    const refusals = await otel.points('sluice.refusals');
    expect(refusals.map((p) => [p.attributes['http.response.status_code'], p.value])).toEqual([[429, 1]]);
    // Consumer ids and IPs never become metric labels (cardinality, privacy).
    expect(decisions.flatMap((p) => Object.keys(p.attributes)).some((k) => /consumer|ip|key/.test(k))).toBe(false);
    await observer.close();
  });

  it('traces each request as a sluice.rate_limit span spanning the request, refusals with their retry time', async () => {
    const otel = sdk();
    const observer = createObserver({ logs: false });
    observer.record(event({ consumer: 'acme', tier: 'pro' }));
    observer.record(event({ requestId: 'req-2', status: 429, allowed: false, decision: decision(false), time: T0 + 1000, durationMs: 2 }));
    const [ok, refused] = otel.spans.getFinishedSpans();
    expect(ok?.name).toBe('sluice.rate_limit');
    expect(ok?.attributes).toMatchObject({ 'sluice.allowed': true, 'sluice.consumer': 'acme', 'sluice.tier': 'pro', 'sluice.limit': 5, 'sluice.remaining': 2, 'http.response.status_code': 200 });
    expect(refused?.attributes).toMatchObject({ 'sluice.allowed': false, 'sluice.outcome': 'limited', 'sluice.retry_after_ms': 12_000, 'http.response.status_code': 429, 'sluice.request_id': 'req-2' });
    // A 429 is the limiter doing its job: not a span error.
    expect(refused?.status.code).toBe(SpanStatusCode.UNSET);
    // Start and end are the request's own times (hrtime [s, ns]).
    expect(refused?.startTime).toEqual([Math.floor((T0 + 1000) / 1000), 0]);
    expect(refused?.endTime).toEqual([Math.floor((T0 + 1000) / 1000), 2_000_000]);
    await observer.close();
  });

  it('marks store failures as span errors', async () => {
    const otel = sdk();
    const observer = createObserver({ logs: false });
    observer.record(event({ storeError: 'STORE_UNAVAILABLE' }));
    const [span] = otel.spans.getFinishedSpans();
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'rate-limit store failed: STORE_UNAVAILABLE' });
    expect((await otel.points('sluice.decisions'))[0]?.attributes['sluice.outcome']).toBe('store_error');
    await observer.close();
  });

  it('an SDK registered after the observer was built still receives everything', async () => {
    const observer = createObserver({ logs: false });
    observer.record(event()); // no SDK yet: the API's no-op
    const otel = sdk();
    observer.record(event({ requestId: 'req-2' }));
    expect((await otel.points('sluice.decisions')).map((p) => p.value)).toEqual([1]);
    expect(otel.spans.getFinishedSpans()).toHaveLength(1);
    await observer.close();
  });

  it('without an SDK, recording is a no-op that never throws; openTelemetry: false turns it off', async () => {
    const observer = createObserver({ logs: false });
    expect(() => observer.record(event())).not.toThrow();
    expect(observer.stats.recorded).toBe(1);
    await observer.close();
    const otel = sdk();
    const off = createObserver({ logs: false, openTelemetry: false });
    off.record(event());
    expect(await otel.points('sluice.decisions')).toEqual([]);
    expect(otel.spans.getFinishedSpans()).toEqual([]);
    await off.close();
  });

  it('a failing SDK costs its own data only: the request is still counted by Prometheus', async () => {
    trace.setGlobalTracerProvider({ getTracer: () => { throw new Error('broken tracer'); } });
    const observer = createObserver({ logs: false });
    expect(() => observer.record(event())).not.toThrow();
    expect(await observer.metrics.text()).toMatch(/sluice_decisions_total\{route="hello",policy="per-ip",outcome="allowed"\} 1/);
    await observer.close();
  });
});
