/**
 * Concurrency limiter: at most `limit` units held at once per key, each under a lease that frees
 * itself `leaseMs` after it was taken, so a crashed holder cannot leak a slot.
 */
import { describe, expect, it } from 'vitest';
import { acquire, compileConcurrencyRule, release, type LeaseEntry } from '../../src/core/algorithms/concurrency/index.js';
import { SluiceConfigError } from '../../src/core/errors.js';
import { createConcurrencyLimiter, MemoryStore } from '../../src/index.js';
import { microClock, T0_US } from './harness.js';

const rule = compileConcurrencyRule({ limit: 3, leaseMs: 1000 });
const LEASE = 1_000_000;

describe('concurrency: pure algorithm', () => {
  it('admits up to `limit` units held at once', () => {
    let leases: readonly LeaseEntry[] | undefined;
    for (let i = 1; i <= 3; i++) {
      const s = acquire(leases, T0_US + i, rule, 1, `l${i}`);
      expect(s.outcome).toMatchObject({ allowed: true, limit: 3, remaining: 3 - i, resetMs: 1000, retryAfterMs: 0, windowMs: 1000 });
      leases = s.next;
    }
    const refused = acquire(leases, T0_US + 10, rule, 1, 'l4');
    // The earliest lease (taken at T0 + 1 µs) frees itself at T0 + 1 µs + leaseMs.
    expect(refused.outcome).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 999.991, resetMs: 999.993 });
  });

  it('a lease expires exactly leaseMs after it was taken, not 1 µs sooner', () => {
    let leases = acquire(undefined, T0_US, rule, 3, 'a').next;
    expect(acquire(leases, T0_US + LEASE - 1, rule, 1, 'b').outcome.allowed).toBe(false);
    const s = acquire(leases, T0_US + LEASE, rule, 3, 'b');
    expect(s.outcome.allowed).toBe(true);
    leases = s.next;
    expect(leases.map((l) => l.id)).toEqual(['b']);
  });

  it('release frees the units at once; releasing twice or an unknown id is harmless', () => {
    let leases: readonly LeaseEntry[] = acquire(undefined, T0_US, rule, 2, 'a').next;
    leases = acquire(leases, T0_US, rule, 1, 'b').next;
    leases = release(leases, T0_US + 1, 'a');
    leases = release(leases, T0_US + 1, 'a');
    leases = release(leases, T0_US + 1, 'nope');
    expect(leases.map((l) => l.id)).toEqual(['b']);
    expect(acquire(leases, T0_US + 2, rule, 2, 'c').outcome.allowed).toBe(true);
  });

  it('a cost larger than what is free waits until enough leases have expired', () => {
    let leases: readonly LeaseEntry[] = acquire(undefined, T0_US, rule, 1, 'a').next;
    leases = acquire(leases, T0_US + 100_000, rule, 1, 'b').next;
    leases = acquire(leases, T0_US + 200_000, rule, 1, 'c').next;
    // Two units are needed: both 'a' and 'b' must expire; 'b' expires at T0 + 1.1 s.
    const o = acquire(leases, T0_US + 300_000, rule, 2, 'd').outcome;
    expect(o).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 800 });
    expect(acquire(leases, T0_US + 1_100_000 - 1, rule, 2, 'd').outcome.allowed).toBe(false);
    expect(acquire(leases, T0_US + 1_100_000, rule, 2, 'd').outcome.allowed).toBe(true);
  });

  it('a weighted lease frees all its units together', () => {
    let leases: readonly LeaseEntry[] = acquire(undefined, T0_US, rule, 2, 'a').next;
    leases = acquire(leases, T0_US + 500_000, rule, 1, 'b').next;
    expect(acquire(leases, T0_US + 600_000, rule, 2, 'c').outcome.retryAfterMs).toBe(400);
  });

  it('a cost above the limit can never pass; cost 0 holds nothing', () => {
    expect(acquire(undefined, T0_US, rule, 4, 'x').outcome).toMatchObject({ allowed: false, retryAfterMs: Infinity, resetMs: 0 });
    const zero = acquire(undefined, T0_US, rule, 0, 'z');
    expect(zero.outcome).toMatchObject({ allowed: true, remaining: 3, resetMs: 0 });
    expect(zero.next).toEqual([]);
  });

  it('a clock that steps backwards keeps every lease held', () => {
    const leases = acquire(undefined, T0_US + 5_000_000, rule, 3, 'a').next;
    expect(acquire(leases, T0_US, rule, 1, 'b').outcome.allowed).toBe(false);
  });
});

describe('concurrency: options', () => {
  it.each([
    [{ limit: 0 }, 'limit'],
    [{ limit: 1.5 }, 'limit'],
    [{ limit: Number.NaN }, 'limit'],
    [{ limit: 2, leaseMs: 0 }, 'leaseMs'],
    [{ limit: 2, leaseMs: Number.POSITIVE_INFINITY }, 'leaseMs'],
    [{ limit: 2, name: '' }, 'name'],
  ])('%o is refused naming %s', (options, field) => {
    expect(() => compileConcurrencyRule(options)).toThrow(SluiceConfigError);
    try {
      compileConcurrencyRule(options);
    } catch (err) {
      expect((err as SluiceConfigError).field).toBe(field);
      expect((err as Error).message).toContain(field);
    }
  });

  it('refuses bad options at construction', () => {
    expect(() => createConcurrencyLimiter({ limit: -1 })).toThrow(SluiceConfigError);
  });
});

describe('concurrency: limiter over the memory store', () => {
  it('acquire, release, acquire again; release is idempotent', async () => {
    const clock = microClock();
    const limiter = createConcurrencyLimiter({ limit: 2, leaseMs: 60_000, clock });
    const a = await limiter.acquire('job');
    const b = await limiter.acquire('job');
    expect(a.allowed && b.allowed).toBe(true);
    expect(a.lease?.id).not.toBe(b.lease?.id);
    const c = await limiter.acquire('job');
    expect(c).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 60_000 });
    expect(c.lease).toBeUndefined();
    await a.lease?.release();
    await a.lease?.release();
    await limiter.release('job', a.lease?.id ?? '');
    const d = await limiter.acquire('job');
    expect(d.allowed).toBe(true);
    expect((await limiter.acquire('job')).allowed).toBe(false);
  });

  it("a crashed holder's slot frees itself after leaseMs", async () => {
    const clock = microClock();
    const limiter = createConcurrencyLimiter({ limit: 1, leaseMs: 5000, clock });
    expect((await limiter.acquire('k')).allowed).toBe(true); // never released
    clock.advance(4999.999);
    expect((await limiter.acquire('k')).allowed).toBe(false);
    clock.advance(0.001);
    expect((await limiter.acquire('k')).allowed).toBe(true);
  });

  it('releasing an old lease after expiry does not free a newer holder', async () => {
    const clock = microClock();
    const limiter = createConcurrencyLimiter({ limit: 1, leaseMs: 1000, clock });
    const old = await limiter.acquire('k');
    clock.advance(1000);
    const current = await limiter.acquire('k');
    expect(current.allowed).toBe(true);
    await old.lease?.release();
    expect((await limiter.acquire('k')).allowed).toBe(false);
  });

  it('keys are independent; a store with no live lease for a key holds nothing for it', async () => {
    const clock = microClock();
    const store = new MemoryStore({ clock });
    const limiter = createConcurrencyLimiter({ limit: 1, leaseMs: 1000, store });
    const a = await limiter.acquire('a');
    expect((await limiter.acquire('b')).allowed).toBe(true);
    expect(store.size).toBe(2);
    await a.lease?.release();
    expect(store.size).toBe(1);
  });

  it('refuses bad keys and costs', async () => {
    const limiter = createConcurrencyLimiter({ limit: 1 });
    await expect(limiter.acquire(42 as unknown as string)).rejects.toThrow(/key/);
    await expect(limiter.acquire('k', -1)).rejects.toThrow(RangeError);
  });
});
