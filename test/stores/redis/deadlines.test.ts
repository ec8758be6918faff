/**
 * Deadlines: the `timeoutMs` limit of every Redis call in flight, kept with one timer. (Only lower
 * bounds on time are asserted: a loaded machine makes timers late, never early.)
 */
import { describe, expect, it } from 'vitest';
import { Deadlines } from '../../../src/stores/redis/deadlines.js';

describe('Deadlines', () => {
  it('expires each unsettled call once, no sooner than its time, in start order; never a settled one', async () => {
    const d = new Deadlines(30);
    const expired: string[] = [];
    const at: Record<string, number> = {};
    const started = performance.now();
    let lastExpired!: () => void;
    const done = new Promise<void>((r) => (lastExpired = r));
    const a = d.start(() => {
      expired.push('a');
      at.a = performance.now();
    });
    const b = d.start(() => expired.push('b'));
    b.settle();
    const c = d.start(() => {
      expired.push('c');
      at.c = performance.now();
      lastExpired();
    });
    await done;
    expect(expired).toEqual(['a', 'c']);
    // performance.now() is fractional and setTimeout rounds: allow 1 ms of rounding.
    expect(at.a as number).toBeGreaterThanOrEqual(started + 29);
    expect([a.settled, b.settled, c.settled]).toEqual([true, true, true]);
    c.settle(); // settling after expiry changes nothing
    expect(expired).toEqual(['a', 'c']);
  });

  it('a call started after every earlier one settled is still timed', async () => {
    const d = new Deadlines(10);
    d.start(() => {
      throw new Error('settled calls never expire');
    }).settle();
    await new Promise((r) => setTimeout(r, 30)); // the timer fired with nothing left to expire
    const expired = await new Promise<string>((resolve) => d.start(() => resolve('expired')));
    expect(expired).toBe('expired');
  });
});

describe('Deadlines hold nothing for settled calls', () => {
  it('a call settled before its time is dropped at once, so its closures are not kept for timeoutMs', () => {
    // Regression: settled entries stayed queued until the timer fired, keeping every call's batch
    // and promises alive for timeoutMs; at one decision per round trip the garbage collector then
    // cost more CPU than the store itself.
    const d = new Deadlines(60_000);
    for (let i = 0; i < 1000; i++) d.start(() => {}).settle();
    expect(d.held).toBe(0);
  });

  it('calls settling out of order: the settled head is dropped, later unsettled ones stay timed', async () => {
    const d = new Deadlines(20);
    const a = d.start(() => {});
    const b = d.start(() => {});
    const expired: string[] = [];
    const done = new Promise<void>((resolve) => {
      d.start(() => {
        expired.push('c');
        resolve();
      });
    });
    b.settle();
    expect(d.held).toBe(3); // a is still in flight ahead of b
    a.settle();
    expect(d.held).toBe(1); // a and b dropped, c left
    await done;
    expect(expired).toEqual(['c']);
    expect(d.held).toBe(0);
  });
});
