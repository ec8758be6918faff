/**
 * FallbackStore: a circuit breaker in front of any store and, in `local` mode, decisions from this
 * process's memory at a share of each limit while the shared store fails; back to the shared
 * store (and its state) as soon as it answers again. The shared store here is a SwitchableStore
 * (up / down / frozen on command); the real-Redis version of the same story is in
 * redis-degraded.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { SluiceConfigError, StoreError } from '../../src/core/errors.js';
import { compileRules } from '../../src/core/rule.js';
import { createLimiter } from '../../src/index.js';
import { FallbackStore, type StoreHealthEvent } from '../../src/stores/fallback-store.js';
import { SwitchableStore } from '../support/switchable-store.js';

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

async function admitted(consume: () => Promise<{ allowed: boolean }>, n: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) if ((await consume()).allowed) ok++;
  return ok;
}

describe('FallbackStore in local mode', () => {
  it('while the shared store is down, enforces limit / expectedInstances from memory', async () => {
    const shared = new SwitchableStore();
    const store = new FallbackStore({ store: shared, expectedInstances: 4, breaker: { probeIntervalMs: 20 } });
    const l = createLimiter({ limit: 20, windowMs: 60_000, store });
    shared.state = 'down';
    expect(await admitted(() => l.consume('k'), 30)).toBe(5);
    const d = await l.consume('k');
    expect(d).toMatchObject({ allowed: false, limit: 5, policy: '20-per-60000ms' });
    await store.close();
  });

  it('logs the switch once each way and counts it; back on the shared store its state rules again', async () => {
    const shared = new SwitchableStore();
    const events: StoreHealthEvent[] = [];
    const store = new FallbackStore({ store: shared, breaker: { failureThreshold: 3, probeIntervalMs: 20 }, onEvent: (e) => events.push(e) });
    const l = createLimiter({ limit: 10, windowMs: 60_000, store });
    expect(await admitted(() => l.consume('k'), 4)).toBe(4); // 4 counted in the shared store
    shared.state = 'down';
    expect(await admitted(() => l.consume('k'), 20)).toBe(10); // local state starts empty
    expect(events.map((e) => e.type + ('to' in e ? `:${e.to}` : ''))).toEqual(['switch:local', 'circuit-open']);
    shared.state = 'up';
    await until(() => !store.usingLocal);
    expect(events.map((e) => e.type + ('to' in e ? `:${e.to}` : ''))).toEqual(['switch:local', 'circuit-open', 'switch:shared', 'circuit-closed']);
    const back = events[2] as Extract<StoreHealthEvent, { to: 'shared' }>;
    expect(back.localDecisions).toBe(20);
    expect(store.stats).toMatchObject({ switchesToLocal: 1, switchesToShared: 1, localDecisions: 20 });
    // The shared store still holds the 4 units from before the outage.
    expect(await admitted(() => l.consume('k'), 10)).toBe(6);
    await store.close();
    expect(shared.closed).toBe(true);
  });

  it('a frozen store: once the circuit is open, decisions stop waiting for it', async () => {
    const shared = new SwitchableStore(2000);
    const store = new FallbackStore({ store: shared, breaker: { failureThreshold: 5, probeIntervalMs: 50 } });
    const l = createLimiter({ limit: 1000, windowMs: 60_000, store });
    shared.state = 'frozen';
    // Five concurrent decisions wait out the timeout together and open the circuit.
    await Promise.all(Array.from({ length: 5 }, (_, i) => l.consume(`k${i}`)));
    expect(store.circuitOpen).toBe(true);
    const callsAtOpen = shared.calls;
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) expect((await l.consume('k')).allowed).toBe(true);
    // 50 decisions in less than one store timeout: none of them waited for the frozen store.
    expect(performance.now() - t0).toBeLessThan(2000);
    // Only the background probe (at most one in flight at a time) reached the store.
    expect(shared.calls - callsAtOpen).toBeLessThanOrEqual(2);
    expect(store.stats.shortCircuited).toBe(50);
    await store.close();
  });

  it('multi-rule decisions fall back atomically too (each rule at its share)', async () => {
    const shared = new SwitchableStore();
    const store = new FallbackStore({ store: shared, localShare: 0.5 });
    const rules = compileRules([
      { name: 'burst', limit: 4, windowMs: 1000 },
      { name: 'hour', limit: 100, windowMs: 3_600_000, algorithm: 'sliding-window' },
    ]);
    shared.state = 'down';
    const ds = [];
    for (let i = 0; i < 3; i++) ds.push(await store.decide('k', rules, 1));
    expect(ds.map((d) => d.allowed)).toEqual([true, true, false]);
    expect(ds[2]?.policy).toBe('burst');
    expect(ds[0]?.policies.map((o) => o.limit)).toEqual([2, 50]);
    await store.close();
  });

  it('concurrency leases taken locally are released locally', async () => {
    const shared = new SwitchableStore();
    const store = new FallbackStore({ store: shared });
    const { createConcurrencyLimiter } = await import('../../src/index.js');
    const c = createConcurrencyLimiter({ limit: 1, leaseMs: 60_000, store });
    shared.state = 'down';
    const first = await c.acquire('k');
    expect(first.allowed).toBe(true);
    expect((await c.acquire('k')).allowed).toBe(false);
    await first.lease?.release();
    expect((await c.acquire('k')).allowed).toBe(true);
    await store.close();
  });
});

describe('FallbackStore charges', () => {
  it('charge goes to the shared store; while it is down, to the local store at its share, like decide', async () => {
    const shared = new SwitchableStore();
    const store = new FallbackStore({ store: shared, expectedInstances: 2, breaker: { failureThreshold: 1, probeIntervalMs: 20 } });
    const l = createLimiter({ limit: 10, windowMs: 60_000, store });
    expect((await l.consume('k')).allowed).toBe(true);
    expect(await l.charge('k', 4)).toMatchObject({ allowed: true, remaining: 5 });
    // The shared store holds the 5 units.
    expect((await shared.inner.decide('k', l.rules, 0, true)).remaining).toBe(5);
    shared.state = 'down';
    const calls = shared.calls;
    // Local: 5 per minute (half); the charge lands there and overdraws it.
    expect((await l.consume('k')).allowed).toBe(true);
    expect(await l.charge('k', 9)).toMatchObject({ allowed: true, remaining: 0, limit: 5 });
    expect(await l.consume('k')).toMatchObject({ allowed: false, remaining: 0, limit: 5 });
    expect(store.circuitOpen).toBe(true);
    // The circuit opened at the first failure: the charge and the last consume did not wait for it.
    expect(shared.calls - calls).toBe(1);
    expect((await shared.inner.decide('k', l.rules, 0, true)).remaining).toBe(5);
    await store.close();
  });

  it('in error mode a charge rejects with StoreError while the shared store is down', async () => {
    const shared = new SwitchableStore();
    const store = new FallbackStore({ store: shared, onStoreError: 'error' });
    const l = createLimiter({ limit: 10, windowMs: 60_000, store });
    shared.state = 'down';
    await expect(l.charge('k', 3)).rejects.toBeInstanceOf(StoreError);
    shared.state = 'up';
    await store.close();
  });
});

describe('FallbackStore in error mode', () => {
  it('rejects with StoreError (at once while open) so the caller applies its own rule', async () => {
    const shared = new SwitchableStore();
    const store = new FallbackStore({ store: shared, onStoreError: 'error', breaker: { failureThreshold: 2, probeIntervalMs: 20 } });
    const l = createLimiter({ limit: 10, windowMs: 60_000, store });
    shared.state = 'down';
    for (let i = 0; i < 4; i++) await expect(l.consume('k')).rejects.toBeInstanceOf(StoreError);
    // Two calls reached the store and opened the circuit; the next two were refused without a call.
    expect(store.stats).toMatchObject({ sharedFailures: 2, shortCircuited: 2 });
    shared.state = 'up';
    await until(() => !store.circuitOpen);
    expect((await l.consume('k')).allowed).toBe(true);
    await store.close();
  });

  it('a script failure on one key (STORE_FAILURE) does not open the circuit', async () => {
    const failing = new SwitchableStore();
    failing.decide = () => Promise.reject(new StoreError('STORE_FAILURE', 'WRONGTYPE'));
    const store = new FallbackStore({ store: failing, onStoreError: 'error', breaker: { failureThreshold: 1 } });
    await expect(store.decide('k', compileRules([{ limit: 1, windowMs: 1000 }]), 1)).rejects.toMatchObject({ code: 'STORE_FAILURE' });
    expect(store.circuitOpen).toBe(false);
    await store.close();
  });
});

describe('FallbackStore options', () => {
  const store = new SwitchableStore();
  it.each([
    [{ store: {} }, 'store'],
    [{ store, expectedInstances: 0 }, 'expectedInstances'],
    [{ store, expectedInstances: 1.5 }, 'expectedInstances'],
    [{ store, localShare: 0 }, 'localShare'],
    [{ store, localShare: 1.5 }, 'localShare'],
    [{ store, onStoreError: 'allow' }, 'onStoreError'],
    [{ store, breaker: { failureThreshold: 0 } }, 'breaker.failureThreshold'],
  ])('%j is refused naming %s', (o, field) => {
    let thrown: unknown;
    try {
      new FallbackStore(o as never);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SluiceConfigError);
    expect((thrown as SluiceConfigError).field).toBe(field);
  });
});
