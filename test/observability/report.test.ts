import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createObserver } from '../../src/observability/observer.js';
import { formatReport, runReport } from '../../src/observability/report.js';
import { event, miniGateway, TOKEN } from './support.js';
import { observabilityConfigSchema, observerFromConfig } from '../../src/observability/config.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `test:obs-report:${randomUUID()}:`;
afterAll(async () => {
  const r = new Redis(REDIS_URL);
  const keys = await r.keys(`${prefix}*`);
  if (keys.length) await r.del(...keys);
  r.disconnect();
});

function sink() {
  let text = '';
  const stream = new Writable({ write: (c, _e, cb) => ((text += c.toString()), cb()) });
  return { stream, get text() { return text; } };
}

describe('sluice report', () => {
  it('prints totals, top consumers and IPs, near-limit and routes; strips terminal escapes from hostile names', async () => {
    const obs = createObserver({ logs: false });
    const hostile = '\u001b]0;pwned\u0007\u001b[2Jmallory\nfake row';
    for (let i = 0; i < 4; i++) obs.record(event({ limited: true, consumer: hostile, ip: '198.51.100.9' }));
    obs.record(event({ limited: true, consumer: 'bob' }));
    obs.record(event({}));
    await obs.flush();
    const text = formatReport(await obs.analytics.summary('1h'));
    await obs.close();
    // eslint-disable-next-line no-control-regex
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/); // only newlines as controls
    expect(text).toMatch(/requests 6 {3}429s 5 \(83\.3 %\)/);
    const lines = text.split('\n');
    const row = lines.findIndex((l) => l.includes('mallory'));
    expect(lines[row]).toMatch(/\ufffd\]0;pwned\ufffd\ufffd\[2Jmallory\ufffdfake row\s+4$/);
    expect(lines[row + 1]).toMatch(/^\s+bob\s+1$/);
    expect(text).toMatch(/198\.51\.100\.9\s+4/);
    expect(text).toMatch(/orders\s+429\s+5/);
  });

  it('reads a running instance through the admin API with the token, and refuses without one', async () => {
    const obs = createObserver({ logs: false });
    const gw = await miniGateway(obs, 1);
    try {
      for (let i = 0; i < 3; i++) await fetch(`${gw.url}/api/x`, { headers: { 'x-consumer': 'zed' } }).then((r) => r.text());
      await obs.flush();
      const out = sink();
      const err = sink();
      expect(await runReport({ admin: gw.url, token: TOKEN, window: '5m' }, out.stream, err.stream)).toBe(0);
      expect(out.text).toMatch(/requests 3 {3}429s 2/);
      expect(out.text).toMatch(/zed\s+2/);
      const bad = sink();
      expect(await runReport({ admin: gw.url, token: 'wrong-token-wrong-token', window: '5m' }, sink().stream, bad.stream)).toBe(1);
      expect(bad.text).toMatch(/401/);
      expect(await runReport({ admin: gw.url, token: TOKEN, window: '2d' }, sink().stream, bad.stream)).toBe(2);
      expect(bad.text).toMatch(/window/);
    } finally {
      await gw.close();
      await obs.close();
    }
  });

  it('reads analytics straight from Redis, built from a config block', async () => {
    const cfg = observabilityConfigSchema.parse({ logs: { enabled: false }, analytics: { retentionHours: 1 } });
    expect(cfg.warnings.threshold).toBe(0.8);
    const redis = new Redis(REDIS_URL);
    const obs = observerFromConfig(cfg, { redis, prefix });
    for (let i = 0; i < 7; i++) obs.record(event({ limited: i < 2, consumer: 'yara' }));
    await obs.close();
    redis.disconnect();
    const out = sink();
    expect(await runReport({ redis: REDIS_URL, prefix, window: '5m', json: true }, out.stream, sink().stream)).toBe(0);
    expect(JSON.parse(out.text)).toMatchObject({ total: 7, limited: 2, topConsumers: [{ id: 'yara', count: 2 }] });
  });

  it('config schema refuses bad values with their path', () => {
    const r = observabilityConfigSchema.safeParse({ warnings: { threshold: 1.5, webhookUrl: 'ftp://x' }, logs: { sampleRate: -1 }, extra: 1 });
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['warnings.threshold', 'warnings.webhookUrl', 'logs.sampleRate']));
  });
});
