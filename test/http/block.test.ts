/**
 * Block duration (penalty box): once a policy with `blockDurationMinutes` / `blockDurationSeconds`
 * refuses a key, the key stays refused for that long, shown in Retry-After and the decision.
 */
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/core/clock.js';
import { SluiceConfigError } from '../../src/core/errors.js';
import { createPolicyEngine } from '../../src/http/engine.js';
import type { HttpRequestInfo } from '../../src/http/request.js';

const req = (ip = '127.0.0.1'): HttpRequestInfo => ({ method: 'GET', path: '/r', headers: {}, remoteAddress: ip });

describe('blockDuration', () => {
  it('a refused key stays refused for the block duration even when its limit has room again', async () => {
    const clock = manualClock();
    const engine = createPolicyEngine({ clock, logger: false, policies: [{ name: 'p', requestsAllowed: 2, timeWindowSeconds: 1, blockDurationSeconds: 60 }] });
    expect((await engine.check(req())).action).toBe('allow');
    expect((await engine.check(req())).action).toBe('allow');
    const refused = await engine.check(req());
    expect(refused.status).toBe(429);
    expect(refused.reason).toBe('rate-limited');
    expect(refused.headers['retry-after']).toBe('60');
    expect(refused.decision?.retryAfterMs).toBe(60_000);
    clock.advance(2000); // the per-second limit is full again
    const blocked = await engine.check(req());
    expect(blocked.status).toBe(429);
    expect(blocked.reason).toBe('penalty');
    expect(blocked.headers['retry-after']).toBe('58');
    expect(JSON.parse(blocked.body as string).detail).toMatch(/^Rate limit exceeded: blocked by "p" until .* after an earlier refusal$/);
    // Other keys are not blocked.
    expect((await engine.check(req('10.0.0.2'))).action).toBe('allow');
    clock.advance(58_000);
    expect((await engine.check(req())).action).toBe('allow');
  });

  it('a blocked key gets the rate-limit headers of its headerMode, like any refusal (r=0 until the block ends)', async () => {
    const clock = manualClock();
    const engine = createPolicyEngine({ clock, logger: false, policies: [{ name: 'p', requestsAllowed: 1, timeWindowSeconds: 1, blockDurationSeconds: 60, headerMode: 'ietf' }] });
    expect((await engine.check(req())).action).toBe('allow');
    expect((await engine.check(req())).status).toBe(429);
    clock.advance(2000);
    const blocked = await engine.check(req());
    expect(blocked.reason).toBe('penalty');
    expect(blocked.headers['retry-after']).toBe('58');
    expect(blocked.headers['ratelimit']).toBe('"p";r=0;t=58');
    expect(blocked.headers['ratelimit-policy']).toBe('"p";q=1;w=1');
  });

  it('without a refusal nothing is blocked; a wait longer than the block keeps the longer Retry-After', async () => {
    const clock = manualClock();
    const engine = createPolicyEngine({ clock, logger: false, policies: [{ name: 'p', requestsAllowed: 1, timeWindowMinutes: 10, blockDurationSeconds: 30, algorithm: 'fixed-window' }] });
    expect((await engine.check(req())).action).toBe('allow');
    const refused = await engine.check(req());
    expect(Number(refused.headers['retry-after'])).toBe(600);
  });

  it('bad block options are configuration errors naming the option', () => {
    const bad: [object, string][] = [
      [{ requestsAllowed: 1, timeWindowMinutes: 1, blockDurationMinutes: 0 }, 'p.blockDurationMinutes'],
      [{ requestsAllowed: 1, timeWindowMinutes: 1, blockDurationSeconds: 'long' }, 'p.blockDurationSeconds'],
      [{ requestsAllowed: 1, timeWindowMinutes: 1, blockDurationMinutes: 1, blockDurationSeconds: 60 }, 'p.blockDurationSeconds'],
      [{ failedAuth: { threshold: 3 }, blockDurationMinutes: 1 }, 'p.blockDurationMinutes'],
    ];
    for (const [options, field] of bad) {
      let err: unknown;
      try {
        createPolicyEngine({ policies: [{ name: 'p', ...options }] });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(options)).toBeInstanceOf(SluiceConfigError);
      expect((err as SluiceConfigError).field).toBe(field);
    }
  });
});
