/** Async-mode blocks: a key refused in the background is refused locally until its retry time, then forgotten. */
import { describe, expect, it } from 'vitest';
import { singleDecision } from '../../src/core/decision.js';
import { AsyncBlocks } from '../../src/http/async-mode.js';
import type { Pending } from '../../src/http/decide.js';
import { compilePolicy } from '../../src/http/options.js';

const policy = compilePolicy({ requestsAllowed: 5, timeWindowMinutes: 1, mode: 'async' }, 'a');
const pending = (key: string): Pending => ({ policy, key, rule: policy.rule });
const refused = singleDecision('k', 1, { policy: 'a', allowed: false, limit: 5, remaining: 0, resetMs: 40_000, retryAfterMs: 12_000, windowMs: 60_000 });

describe('AsyncBlocks', () => {
  it('describes a blocked key as the store did, counted down from the block', () => {
    const b = new AsyncBlocks();
    b.block(pending('k'), refused, 1000);
    expect(b.refusal(pending('k'), 3000)).toEqual({ policy: 'a', allowed: false, limit: 5, remaining: 0, resetMs: 38_000, retryAfterMs: 10_000, windowMs: 60_000 });
    expect(b.refusal(pending('other'), 3000)).toBeUndefined();
  });
  it('forgets a block at its retry time', () => {
    const b = new AsyncBlocks();
    b.block(pending('k'), refused, 0);
    expect(b.refusal(pending('k'), 11_999)).toBeDefined();
    expect(b.refusal(pending('k'), 12_000)).toBeUndefined();
    expect(b.refusal(pending('k'), 11_999)).toBeUndefined();
  });
});
