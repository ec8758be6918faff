/**
 * Custom refusals: a policy's statusCode (429 or 503), detail, extra headers and, in code, a
 * handler; the body stays RFC 9457 unless the handler replaces it.
 */
import { describe, expect, it } from 'vitest';
import { SluiceConfigError } from '../../src/core/errors.js';
import { createPolicyEngine } from '../../src/http/engine.js';
import type { HttpRequestInfo } from '../../src/http/request.js';

const req = (): HttpRequestInfo => ({ method: 'GET', path: '/r', headers: {}, remoteAddress: '127.0.0.1' });
const one = { requestsAllowed: 1, timeWindowMinutes: 1 };

describe('custom refusals', () => {
  it('statusCode 503, a detail and extra headers; the body is still Problem Details with Retry-After', async () => {
    const engine = createPolicyEngine({ logger: false, policies: [{ name: 'p', ...one, statusCode: 503, detail: 'Upstream capacity reached, retry later', headers: { 'x-upgrade': 'https://example.com/pricing' } }] });
    await engine.check(req());
    const r = await engine.check(req());
    expect(r.status).toBe(503);
    expect(r.headers['x-upgrade']).toBe('https://example.com/pricing');
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(r.headers['retry-after']).toBe('60');
    expect(JSON.parse(r.body as string)).toMatchObject({ status: 503, detail: 'Upstream capacity reached, retry later', instance: '/r' });
  });

  it('a handler may replace the body and add headers; it sees the decision and the default refusal', async () => {
    const engine = createPolicyEngine({
      logger: false,
      policies: [
        {
          name: 'p',
          ...one,
          handler: (r) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'slow down', policy: r.policy, remaining: r.decision?.remaining, was: JSON.parse(r.body).status }) }),
        },
      ],
    });
    await engine.check(req());
    const r = await engine.check(req());
    expect(r.status).toBe(429);
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body as string)).toEqual({ error: 'slow down', policy: 'p', remaining: 0, was: 429 });
  });

  it('a handler that throws leaves the default refusal; other policies keep the defaults', async () => {
    const engine = createPolicyEngine({
      logger: false,
      policies: [{ name: 'p', ...one, handler: () => { throw new Error('bug'); } }],
    });
    await engine.check(req());
    const r = await engine.check(req());
    expect(r.status).toBe(429);
    expect(JSON.parse(r.body as string).detail).toBe('Rate limit exceeded');
  });

  it('bad refusal options are configuration errors naming the option', () => {
    const bad: [object, string][] = [
      [{ statusCode: 500 }, 'p.statusCode'],
      [{ detail: '' }, 'p.detail'],
      [{ headers: { 'retry-after': '1' } }, 'p.headers.retry-after'],
      [{ headers: { 'bad header': '1' } }, 'p.headers.bad header'],
      [{ headers: { 'x-a': 'v\r\nx-b: 1' } }, 'p.headers.x-a'],
      [{ handler: 'nope' }, 'p.handler'],
    ];
    for (const [options, field] of bad) {
      let err: unknown;
      try {
        createPolicyEngine({ policies: [{ name: 'p', ...one, ...options }] });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(options)).toBeInstanceOf(SluiceConfigError);
      expect((err as SluiceConfigError).field).toBe(field);
    }
  });
});
