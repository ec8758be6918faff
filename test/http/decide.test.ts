/** Deciding a request's strict policies: one atomic call per key, peek-then-consume across keys. */
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/core/clock.js';
import { decideStrict, decideSyncGroup, type Pending } from '../../src/http/decide.js';
import { createDeciders, type Deciders } from '../../src/http/deciders.js';
import type { HeaderInput } from '../../src/http/headers.js';
import { compilePolicy } from '../../src/http/options.js';
import { MemoryStore } from '../../src/stores/memory-store.js';

/** The strict decider's store access: every group through the store's own decide (no 'local' policies here). */
const via = (d: Deciders) => ({ decideFor: () => d.decide, decideNow: d.decideNow });

const policy = (name: string, requestsAllowed: number, minutes: number) => compilePolicy({ requestsAllowed, timeWindowMinutes: minutes, algorithm: 'fixed-window', headerMode: 'ietf' }, name);
const pending = (p: ReturnType<typeof policy>, key: string): Pending => ({ policy: p, key, rule: p.rule });

describe('decideStrict', () => {
  it('different keys: when one would refuse, nothing is consumed from the others', async () => {
    const store = new MemoryStore({ clock: manualClock() });
    const deciders = createDeciders(store);
    const wide = policy('wide', 10, 60);
    const narrow = policy('narrow', 1, 60);
    await decideStrict([pending(narrow, 'ip:1')], [], via(deciders)); // narrow's key is now exhausted
    const inputs: HeaderInput[] = [];
    const out = await decideStrict([pending(wide, 'user:a'), pending(narrow, 'ip:1')], inputs, via(deciders));
    expect(out.refusing?.name).toBe('narrow');
    expect(out.decision?.allowed).toBe(false);
    expect(inputs.map((i) => [i.name, i.outcome.allowed])).toEqual([['wide', true], ['narrow', false]]);
    // user:a was only peeked: its full budget of 10 is still there.
    expect((await store.decide('user:a', [wide.rule], 0, true)).remaining).toBe(10);
  });

  it('one key: every rule in one atomic call; the refusing policy is the one that makes the client wait longest', () => {
    const store = new MemoryStore({ clock: manualClock() });
    const { decideNow } = createDeciders(store);
    const perMinute = policy('per-minute', 1, 1);
    const perHour = policy('per-hour', 1, 60);
    const group = [pending(perMinute, 'k'), pending(perHour, 'k')];
    expect(decideSyncGroup(group, [], decideNow!).refusing).toBeUndefined();
    const inputs: HeaderInput[] = [];
    const out = decideSyncGroup(group, inputs, decideNow!);
    expect(out.refusing?.name).toBe('per-hour');
    expect(inputs).toHaveLength(2);
  });

  it('a store failure is attributed to the policy that fails closed', async () => {
    const failing = { decide: () => Promise.reject(new Error('down')), charge: () => Promise.reject(new Error('down')), reset: async () => {}, acquire: () => Promise.reject(new Error('x')), release: async () => {}, close: async () => {} };
    const open = policy('open', 1, 1);
    const closed = compilePolicy({ requestsAllowed: 1, timeWindowMinutes: 1, onStoreError: 'deny' }, 'closed');
    const out = await decideStrict([pending(open, 'k'), pending(closed, 'k')], [], via(createDeciders(failing)));
    expect(out.error?.policy.name).toBe('closed');
    expect(out.decision).toBeUndefined();
  });
});
