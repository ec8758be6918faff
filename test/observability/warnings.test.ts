import { afterEach, describe, expect, it } from 'vitest';
import { SluiceConfigError } from '../../src/core/errors.js';
import { createObserver } from '../../src/observability/observer.js';
import { WarningEmitter, type NearLimitWarning } from '../../src/observability/warnings.js';
import { decision, event, lineSink, listen } from './support.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

describe('near-limit warnings', () => {
  it('emits one warning per window per consumer and policy when usage crosses the threshold', () => {
    const seen: NearLimitWarning[] = [];
    const w = new WarningEmitter({ onWarning: (x) => seen.push(x) });
    const t0 = 1_700_000_000_000;
    // 10 per minute: remaining 9..3 is below 80 %, 2 is 80 %.
    for (let r = 9; r >= 3; r--) w.check(event({ time: t0, decision: decision({ limit: 10, remaining: r }) }));
    expect(seen).toHaveLength(0);
    w.check(event({ time: t0 + 1, decision: decision({ limit: 10, remaining: 2 }) }));
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ type: 'near-limit', consumer: 'alice', policy: 'per-minute', usage: 0.8, threshold: 0.8, limit: 10, remaining: 2, windowMs: 60_000, route: 'orders' });
    // Same window: further crossings and refusals stay quiet.
    w.check(event({ time: t0 + 2, decision: decision({ limit: 10, remaining: 0 }) }));
    w.check(event({ time: t0 + 3, limited: true, decision: decision({ allowed: false }) }));
    expect(seen).toHaveLength(1);
    // Another consumer, another policy: their own warnings.
    w.check(event({ time: t0 + 4, consumer: 'bob', decision: decision({ limit: 10, remaining: 1 }) }));
    w.check(event({ time: t0 + 5, decision: decision({ policy: 'per-hour', limit: 100, remaining: 5, windowMs: 3_600_000 }) }));
    expect(seen.map((x) => `${x.consumer}/${x.policy}`)).toEqual(['alice/per-minute', 'bob/per-minute', 'alice/per-hour']);
    // Next window: warned again.
    w.check(event({ time: t0 + 1 + 60_000, decision: decision({ limit: 10, remaining: 1 }) }));
    expect(seen).toHaveLength(4);
  });

  it('honours a configured threshold and writes a log line', async () => {
    const sink = lineSink();
    const obs = createObserver({ logs: { destination: sink.stream, sampleRate: 0 }, warnings: { threshold: 0.5 } });
    closers.push(() => obs.close());
    obs.record(event({ decision: decision({ limit: 10, remaining: 6 }) }));
    obs.record(event({ decision: decision({ limit: 10, remaining: 5 }) }));
    await obs.logger!.flush();
    await new Promise((r) => setImmediate(r));
    const warnings = sink.lines.map((l) => JSON.parse(l)).filter((o) => o.msg === 'near limit');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ consumer: 'alice', policy: 'per-minute', usage: 0.5, threshold: 0.5 });
    expect(await obs.metrics.text()).toMatch(/sluice_near_limit_total\{route="orders",policy="per-minute"\} 1/);
  });

  it('POSTs the warning to a webhook, retrying with backoff on 500s', async () => {
    const hits: Array<{ at: number; body: NearLimitWarning }> = [];
    const hook = await listen((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        hits.push({ at: Date.now(), body: JSON.parse(body) });
        res.writeHead(hits.length < 3 ? 500 : 204).end();
      });
    });
    closers.push(() => hook.close());
    const w = new WarningEmitter({ webhookUrl: `${hook.url}/hook`, backoffMs: 50, retries: 3 });
    w.check(event({ decision: decision({ limit: 10, remaining: 0 }) }));
    await w.idle();
    expect(hits).toHaveLength(3);
    expect(hits.every((h) => h.body.consumer === 'alice' && h.body.type === 'near-limit')).toBe(true);
    // Backoff: at least 50 ms, then at least 100 ms between attempts.
    expect(hits[1]!.at - hits[0]!.at).toBeGreaterThanOrEqual(45);
    expect(hits[2]!.at - hits[1]!.at).toBeGreaterThanOrEqual(95);
    expect(w.stats).toMatchObject({ emitted: 1, delivered: 1, failed: 0, attempts: 3 });
  });

  it('gives up after the retries and counts the failure', async () => {
    let n = 0;
    const hook = await listen((_req, res) => {
      n++;
      res.writeHead(503).end();
    });
    closers.push(() => hook.close());
    const w = new WarningEmitter({ webhookUrl: hook.url, backoffMs: 1, retries: 2 });
    w.check(event({ decision: decision({ allowed: false }) }));
    await w.idle();
    expect(n).toBe(3);
    expect(w.stats).toMatchObject({ delivered: 0, failed: 1 });
  });

  it('never blocks record(): a hanging webhook leaves the request path untouched and the queue bounded', async () => {
    const pending: Array<() => void> = [];
    const hook = await listen((_req, res) => {
      pending.push(() => res.writeHead(200).end()); // never answers until the test ends
    });
    closers.push(async () => {
      pending.forEach((f) => f());
      await hook.close();
    });
    const obs = createObserver({ logs: false, warnings: { webhookUrl: hook.url, maxQueue: 5, timeoutMs: 60_000 } });
    closers.push(() => obs.close());
    for (let i = 0; i < 50; i++) {
      // 50 distinct consumers at their limit: 50 warnings.
      const ret = obs.record(event({ consumer: `c${i}`, limited: true, decision: decision({ allowed: false }) }));
      expect(ret).toBeUndefined(); // synchronous: nothing to await
    }
    expect(obs.warnings.stats.emitted).toBe(50);
    // One is in flight (or about to be), at most 5 queued: the rest were dropped, not buffered.
    expect(obs.warnings.stats.dropped).toBeGreaterThanOrEqual(50 - 5 - 1);
    expect(await obs.metrics.text()).toMatch(/sluice_warning_webhooks_total\{result="dropped"\} \d+/);
    await obs.warnings.close(10);
  });

  it('rejects bad options at construction', () => {
    expect(() => new WarningEmitter({ threshold: 0 })).toThrow(SluiceConfigError);
    expect(() => new WarningEmitter({ threshold: 1.5 })).toThrow(/threshold/);
    expect(() => new WarningEmitter({ webhookUrl: 'not a url' })).toThrow(/webhookUrl/);
    expect(() => new WarningEmitter({ webhookUrl: 'file:///etc/passwd' })).toThrow(/http or https/);
    expect(() => new WarningEmitter({ retries: -1 })).toThrow(/retries/);
  });
});
