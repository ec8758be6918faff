/**
 * `mode: 'async'` on a remote store: the request proceeds while its count is made in the
 * background; a key found over its limit is refused locally until its retry time. This holds
 * those blocks (bounded: the oldest is dropped past {@link MAX_ASYNC_BLOCKS}).
 */
import type { Decision, RuleOutcome } from '../core/decision.js';
import type { Pending } from './decide.js';

/** Most keys held blocked at once. */
export const MAX_ASYNC_BLOCKS = 100_000;

interface Block {
  /** Epoch ms when the key may proceed again. */
  readonly until: number;
  /** Epoch ms when the key's bucket is full again. */
  readonly resetAt: number;
  readonly limit: number;
  readonly windowMs: number;
}

/** The keys of async policies known to be over their limit. */
export class AsyncBlocks {
  private readonly blocked = new Map<string, Block>();

  /** Remember that `p`'s key was refused by `d` (decided at `now`). */
  block(p: Pending, d: Decision, now: number): void {
    if (this.blocked.size >= MAX_ASYNC_BLOCKS) this.blocked.delete(this.blocked.keys().next().value as string);
    this.blocked.set(`${p.policy.pool}\u0000${p.key}`, { until: now + d.retryAfterMs, resetAt: now + d.resetMs, limit: d.limit, windowMs: d.windowMs });
  }

  /**
   * The refusal outcome when `p`'s key is still blocked at `now` (as the store would describe it:
   * nothing remaining, admissible again after the block), else `undefined` (an expired block is forgotten).
   */
  refusal(p: Pending, now: number): RuleOutcome | undefined {
    const bk = `${p.policy.pool}\u0000${p.key}`;
    const b = this.blocked.get(bk);
    if (b === undefined) return undefined;
    if (b.until <= now) {
      this.blocked.delete(bk);
      return undefined;
    }
    return { policy: p.policy.pool, allowed: false, limit: b.limit, remaining: 0, resetMs: Math.max(b.resetAt - now, b.until - now), retryAfterMs: b.until - now, windowMs: b.windowMs };
  }
}
