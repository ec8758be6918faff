/** A leaky bucket reported as a level only (Shopify's used/capacity): the leak is measured, never guessed high. */
import { describe, expect, it } from 'vitest';
import { bucketReadyAt, bucketRefused, observeBucket, type LeakyBucket } from '../../src/client/bucket.js';

/** A server bucket of `capacity` leaking `perSec`, answering each request with ceil(level). */
function server(capacity: number, perSec: number) {
  let level = 0;
  let at = 0;
  return (now: number): { ok: boolean; used: number } => {
    level = Math.max(0, level - ((now - at) * perSec) / 1000);
    at = now;
    if (level + 1 > capacity) return { ok: false, used: Math.ceil(level) };
    level += 1;
    return { ok: true, used: Math.ceil(level) };
  };
}

describe('leaky bucket from levels (Shopify)', () => {
  it('measures a lower bound of the leak from successive levels, tight after a few seconds', () => {
    const take = server(40, 2);
    let b: LeakyBucket | undefined;
    // 40 requests 25 ms apart fill the bucket, then one every 600 ms (below the leak of 2/s).
    const times = [...Array.from({ length: 40 }, (_, i) => i * 25), ...Array.from({ length: 10 }, (_, i) => 1000 + i * 600)];
    for (const t of times) {
      const r = take(t);
      b = observeBucket(b, r.used, 40, r.ok, t, t + 5);
      expect(b.leakPerMs * 1000).toBeLessThanOrEqual(2 + 1e-9); // never above the real leak
    }
    expect((b as LeakyBucket).leakPerMs * 1000).toBeGreaterThan(1.7);
  });

  it('paces at the measured leak once full: a client following bucketReadyAt is never refused', () => {
    const take = server(10, 5);
    let b: LeakyBucket | undefined;
    let now = 0;
    let refused = 0;
    let sent = 0;
    // One request at a time, answered after 5 ms, each sent as soon as bucketReadyAt allows.
    while (sent < 60) {
      const ready = b === undefined ? now : bucketReadyAt(b, now, 0, 1);
      now = Math.max(now, Math.ceil(ready));
      const r = take(now);
      sent++;
      if (!r.ok) refused++;
      b = observeBucket(b, r.used, 10, r.ok, now, now + 5);
      if (!r.ok) b = bucketRefused(b, now + 5);
      now += 5;
    }
    expect(refused).toBe(0);
    // 60 calls on a bucket of 10 leaking 5/s need at least 10 s; a measured leak keeps close to it.
    expect(now).toBeLessThan(14_000);
  });

  it('with nothing measured yet, the first request after the bucket filled waits as if it leaked 1/s; with answers in flight it waits for them', () => {
    const b = observeBucket(undefined, 9, 10, true, 0, 10);
    expect(bucketReadyAt(b, 10, 0, 1)).toBe(1010);
    expect(bucketReadyAt(b, 10, 1, 1)).toBe(Infinity);
    expect(bucketReadyAt(observeBucket(undefined, 3, 10, true, 0, 10), 10, 2, 1)).toBe(10);
  });

  it('a refusal despite the prediction lowers the estimate', () => {
    const b: LeakyBucket = { capacity: 10, used: 5, usedAt: 0, leakPerMs: 0.01, accepted: 5, readings: [] };
    expect(bucketRefused(b, 100)).toMatchObject({ used: 10, usedAt: 100, leakPerMs: 0.0085 });
  });
});
