/** The circuit breaker: opens on consecutive failures only, probes in the background, closes on a good probe. */
import { describe, expect, it } from 'vitest';
import { SluiceConfigError } from '../../src/core/errors.js';
import { breakerSettings, CircuitBreaker } from '../../src/stores/circuit-breaker.js';

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

function breaker(threshold: number, probeOk: () => boolean) {
  const log: string[] = [];
  let probes = 0;
  const b = new CircuitBreaker(
    { failureThreshold: threshold, probeIntervalMs: 20 },
    () => {
      probes++;
      return probeOk() ? Promise.resolve() : Promise.reject(new Error('still down'));
    },
    { onOpen: (_e, n) => log.push(`open:${n}`), onClose: () => log.push('close') },
  );
  return { b, log, probes: () => probes };
}

describe('CircuitBreaker', () => {
  it('opens at the threshold of consecutive failures, not before', () => {
    const { b, log } = breaker(3, () => false);
    b.failure(new Error('x'));
    b.failure(new Error('x'));
    expect(b.isOpen).toBe(false);
    b.failure(new Error('x'));
    expect(b.isOpen).toBe(true);
    expect(log).toEqual(['open:3']);
    b.stop();
  });

  it('a success resets the count: scattered failures never open it', () => {
    const { b } = breaker(3, () => false);
    for (let i = 0; i < 10; i++) {
      b.failure(new Error('x'));
      b.failure(new Error('x'));
      b.success();
    }
    expect(b.isOpen).toBe(false);
    expect(b.consecutiveFailures).toBe(0);
    b.stop();
  });

  it('probes in the background while open and closes at the first good probe', async () => {
    let healthy = false;
    const { b, log, probes } = breaker(1, () => healthy);
    b.failure(new Error('x'));
    await until(() => probes() >= 3);
    expect(b.isOpen).toBe(true);
    healthy = true;
    await until(() => !b.isOpen);
    expect(log).toEqual(['open:1', 'close']);
    const after = probes();
    await new Promise((r) => setTimeout(r, 100));
    expect(probes()).toBe(after); // no probing once closed
    b.stop();
  });

  it('stop() ends probing', async () => {
    const { b, probes } = breaker(1, () => false);
    b.failure(new Error('x'));
    b.stop();
    await new Promise((r) => setTimeout(r, 100));
    expect(probes()).toBe(0);
  });

  it.each([
    [{ failureThreshold: 0 }, 'breaker.failureThreshold'],
    [{ failureThreshold: 1.5 }, 'breaker.failureThreshold'],
    [{ probeIntervalMs: 1 }, 'breaker.probeIntervalMs'],
  ])('%j is refused naming %s', (o, field) => {
    expect(() => breakerSettings(o)).toThrow(SluiceConfigError);
    try {
      breakerSettings(o);
    } catch (err) {
      expect((err as SluiceConfigError).field).toBe(field);
    }
  });
});
