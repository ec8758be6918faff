import { describe, expect, it } from 'vitest';
import { createRequestLogger } from '../../src/observability/logger.js';
import { SluiceConfigError } from '../../src/core/errors.js';
import { decision, event, lineSink } from './support.js';

async function logged(events: Parameters<ReturnType<typeof createRequestLogger>['log']>[0][], sampleRate = 0) {
  const sink = lineSink();
  const log = createRequestLogger({ destination: sink.stream, sampleRate, maxFieldLength: 100 });
  for (const e of events) log.log(e);
  await log.flush();
  await new Promise((r) => setImmediate(r));
  return sink.lines;
}

describe('request logger', () => {
  it('logs every 429 as one JSON line with consumer, key, route, IP, policy and requestId', async () => {
    const lines = await logged([event({ limited: true, requestId: 'abc', decision: decision({ allowed: false }) })]);
    expect(lines).toHaveLength(1);
    const o = JSON.parse(lines[0]!);
    expect(o).toMatchObject({ msg: 'rate limited', event: 'limited', status: 429, consumer: 'alice', key: 'user:alice', route: 'orders', ip: '203.0.113.7', policy: 'per-minute', requestId: 'abc', retryAfterMs: 1000 });
  });

  it('samples allowed requests at exactly the configured rate and never drops refusals', async () => {
    const events = Array.from({ length: 100 }, (_, i) => event({ limited: i % 10 === 0 }));
    const lines = await logged(events, 0.25);
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed.filter((o) => o.status === 429)).toHaveLength(10);
    expect(parsed.filter((o) => o.status === 200)).toHaveLength(Math.floor(90 * 0.25));
    expect(await logged(events, 0)).toHaveLength(10);
    expect(await logged(events, 1)).toHaveLength(100);
  });

  it('keeps hostile values inside their field: no forged lines, no raw control bytes, bounded length', async () => {
    const forged = 'bob\n{"level":30,"msg":"rate limited","consumer":"admin"}\r\n';
    const ansi = '\u001b[2J\u001b[31mred\u001b[0m';
    const html = '<img src=x onerror=alert(1)>';
    const huge = 'x'.repeat(1_000_000);
    const lines = await logged([
      event({ limited: true, consumer: forged, key: ansi, route: html, path: huge, ip: '1.2.3.4\u2028evil', requestId: 'q\u0000' }),
    ]);
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    // eslint-disable-next-line no-control-regex
    expect(line).not.toMatch(/[\u0000-\u001f\u2028\u2029]/);
    expect(line.length).toBeLessThan(2000);
    const o = JSON.parse(line);
    expect(o.consumer.startsWith('bob')).toBe(true);
    expect(o.consumer).not.toContain('\n');
    expect(o.key).not.toContain('\u001b');
    expect(o.route).toBe(html); // HTML is just text in a JSON string
    expect(o.path.length).toBeLessThanOrEqual(100);
    expect(o.path.endsWith('…')).toBe(true);
  });

  it('rejects a bad sample rate at construction', () => {
    expect(() => createRequestLogger({ sampleRate: 2 })).toThrow(SluiceConfigError);
    expect(() => createRequestLogger({ sampleRate: Number.NaN })).toThrow(/sampleRate/);
  });
});
