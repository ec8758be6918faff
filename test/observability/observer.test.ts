import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { combine } from '../../src/core/decision.js';
import { SluiceConfigError } from '../../src/core/errors.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createObserver } from '../../src/observability/observer.js';
import type { NearLimitWarning } from '../../src/observability/warnings.js';
import { event } from './support.js';

describe('observer', () => {
  it('warns on a rule that is near its limit even when another rule decides the headers', async () => {
    const seen: NearLimitWarning[] = [];
    const obs = createObserver({ logs: false, warnings: { onWarning: (w) => seen.push(w) } });
    // per-second has the fewest remaining (4 of 10: 60 %) and decides; per-day is at 99.5 %.
    const d = combine('user:alice', 1, [
      { policy: 'per-second', allowed: true, limit: 10, remaining: 4, resetMs: 1000, retryAfterMs: 0, windowMs: 1000 },
      { policy: 'per-day', allowed: true, limit: 1000, remaining: 5, resetMs: 1000, retryAfterMs: 0, windowMs: 86_400_000 },
    ]);
    expect(d.policy).toBe('per-second');
    obs.record(event({ decision: d }));
    expect(seen.map((w) => w.policy)).toEqual(['per-day']);
    await obs.flush();
    expect((await obs.analytics.summary('5m')).nearLimit).toEqual([{ consumer: 'alice', policy: 'per-day', usage: 0.995 }]);
    await obs.close();
  });

  it('counts shadow refusals, denials and store errors under their own outcomes', async () => {
    const obs = createObserver({ logs: false });
    obs.record(event({ shadow: true }));
    obs.record(event({ allowed: false, status: 403 }));
    obs.record(event({ storeError: 'STORE_TIMEOUT', allowed: true, status: 200 }));
    obs.record(event({ storeError: 'STORE_UNAVAILABLE', allowed: false, status: 503 }));
    const text = await obs.metrics.text();
    expect(text).toContain('sluice_decisions_total{route="orders",policy="per-minute",outcome="shadow_limited"} 1');
    expect(text).toContain('sluice_decisions_total{route="orders",policy="per-minute",outcome="denied"} 1');
    expect(text).toContain('sluice_decisions_total{route="orders",policy="per-minute",outcome="store_error"} 2');
    expect(text).toContain('sluice_store_errors_total{route="orders"} 2');
    expect(text).toContain('sluice_responses_total{route="orders",status="503"} 1');
    await obs.close();
  });

  it('folds label values past the cardinality guard into (other) and escapes hostile label values', async () => {
    const m = createMetrics({ maxLabelValues: 3 });
    for (let i = 0; i < 10; i++) m.observe(event({ route: `r${i}` }));
    m.observe(event({ route: 'r0' }));
    const text = await m.text();
    expect(text).toContain('sluice_decisions_total{route="r0",policy="per-minute",outcome="allowed"} 2');
    expect(text).toContain('sluice_decisions_total{route="(other)",policy="per-minute",outcome="allowed"} 7');
    const h = createMetrics();
    h.observe(event({ route: 'x"} 999\nsluice_fake 1' }));
    const t2 = await h.text();
    expect(t2).not.toMatch(/^sluice_fake/m);
    expect(t2.split('\n').filter((l) => l.startsWith('sluice_decisions_total{'))).toHaveLength(1);
  });

  it('keeps recording when the analytics store is down, and counts the failed flushes', async () => {
    const dead = new Redis({ port: 1, host: '127.0.0.1', lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    dead.on('error', () => {});
    const obs = createObserver({ logs: false, analytics: { redis: dead, prefix: 'test:obs-dead:' } });
    for (let i = 0; i < 10; i++) obs.record(event({ limited: true }));
    await obs.flush();
    expect(obs.stats).toEqual({ recorded: 10, flushErrors: 1 });
    expect(await obs.metrics.text()).toContain('outcome="limited"} 10');
    await obs.close();
    dead.disconnect();
  });

  it('rejects bad options at construction', () => {
    expect(() => createObserver({ flushIntervalMs: 0 })).toThrow(SluiceConfigError);
    expect(() => createObserver({ logs: false, analytics: { retentionMs: 1000 } })).toThrow(/retentionMs/);
    expect(() => createMetrics({ prefix: 'bad-prefix' })).toThrow(/prefix/);
  });
});
