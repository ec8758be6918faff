/**
 * A store whose health a test controls: `up` (a memory store answers), `down` (rejects at once
 * with STORE_UNAVAILABLE, like a refused connection) or `frozen` (never answers until it times out
 * after `timeoutMs`, like a Redis that stopped responding). Counts the calls that reached it.
 */
import type { ConcurrencyRule } from '../../src/core/algorithms/concurrency/index.js';
import type { Decision } from '../../src/core/decision.js';
import { StoreError } from '../../src/core/errors.js';
import type { Rule } from '../../src/core/rule.js';
import type { Store } from '../../src/core/store.js';
import { MemoryStore } from '../../src/stores/memory-store.js';

export class SwitchableStore implements Store {
  state: 'up' | 'down' | 'frozen' = 'up';
  calls = 0;
  readonly inner = new MemoryStore();
  constructor(readonly timeoutMs = 250) {}

  private gate<T>(ok: () => Promise<T>): Promise<T> {
    this.calls++;
    if (this.state === 'up') return ok();
    if (this.state === 'down') return Promise.reject(new StoreError('STORE_UNAVAILABLE', 'connect ECONNREFUSED 127.0.0.1:7199'));
    return new Promise((_, reject) => setTimeout(() => reject(new StoreError('STORE_TIMEOUT', `no answer within ${this.timeoutMs} ms`)), this.timeoutMs));
  }
  decide(key: string, rules: readonly Rule[], cost: number, peek?: boolean): Promise<Decision> {
    return this.gate(() => this.inner.decide(key, rules, cost, peek));
  }
  charge(key: string, rules: readonly Rule[], cost: number): Promise<Decision> {
    return this.gate(() => this.inner.charge(key, rules, cost));
  }
  reset(key: string, rules: readonly Rule[]): Promise<void> {
    return this.gate(() => this.inner.reset(key, rules));
  }
  acquire(key: string, rule: ConcurrencyRule, cost: number, leaseId: string): Promise<Decision> {
    return this.gate(() => this.inner.acquire(key, rule, cost, leaseId));
  }
  release(key: string, rule: ConcurrencyRule, leaseId: string): Promise<void> {
    return this.gate(() => this.inner.release(key, rule, leaseId));
  }
  closed = false;
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
