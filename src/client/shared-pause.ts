/**
 * Pauses kept in the store, so every process sharing it (a RedisStore) stops when one of them is
 * refused: a 429 pause of a lane, or an open credential breaker.
 *
 * No new store primitive is needed: a pause is a GCRA state (one number, the TAT) with 1 µs cells.
 * The setter rule has a day of tolerance, so consuming `ms * 1000` units moves the TAT `ms` into
 * the future; the checker rule shares the state (same name) with a 10 ms tolerance, so it refuses
 * while the TAT is ahead of now and its `retryAfterMs` is what is left of the pause. A request
 * checked through it moves the TAT by its cost in µs: nothing.
 */
import type { Decision } from '../core/decision.js';
import { limiterOn, type Limiter } from '../core/limiter.js';
import type { LimitOptions } from '../core/rule.js';
import type { Store } from '../core/store.js';

const DAY_MS = 86_400_000;
const CELLS = DAY_MS * 1000;
const NAME = 'sluice-client-pause';
/** Largest cost a checked request may have (the checker's tolerance, in µs). */
export const MAX_CHECKED_COST = 10_000;

/** The checker rule: add it to a lane's limiter so one decision also checks the shared pause. */
export const PAUSE_CHECK: LimitOptions = { name: NAME, algorithm: 'gcra', limit: CELLS, windowMs: DAY_MS, burst: MAX_CHECKED_COST };
const PAUSE_SET: LimitOptions = { name: NAME, algorithm: 'gcra', limit: CELLS, windowMs: DAY_MS, burst: CELLS };

/** Largest budget a shared learned limit can state (larger budgets are not learned down across processes). */
export const MAX_SHARED_LIMIT = 10_000;
/** A limit learned down from refusals creeps back up by one unit per this (the server may have relented). */
const RECOVER_MS = 600_000;

/**
 * A budget learned down from refusals, kept in the store with the same trick: a GCRA state of
 * `MAX_SHARED_LIMIT` units that regain one per `RECOVER_MS`, whose remaining units are the limit
 * per window (a fresh key: `MAX_SHARED_LIMIT`, nothing learned). Lowering it to n consumes the
 * difference. One state per window length, so a limit is compared with budgets of its window only.
 */
function learnedRule(windowMs: number): LimitOptions {
  const window = MAX_SHARED_LIMIT * RECOVER_MS;
  return { name: `sluice-client-learned:${windowMs}`, algorithm: 'gcra', limit: MAX_SHARED_LIMIT, windowMs: window, burst: MAX_SHARED_LIMIT };
}

/** Shared pauses (and limits learned down from refusals) in one store. */
export class SharedPauses {
  private readonly setter: Limiter;
  readonly checker: Limiter;
  private readonly learned = new Map<number, Limiter>();
  constructor(private readonly store: Store) {
    this.setter = limiterOn(store, { limits: [PAUSE_SET], maxKeyLength: 4096 });
    this.checker = limiterOn(store, { limits: [PAUSE_CHECK], maxKeyLength: 4096 });
  }
  private learnedLimiter(windowMs: number): Limiter {
    let l = this.learned.get(windowMs);
    if (l === undefined) this.learned.set(windowMs, (l = limiterOn(this.store, { limits: [learnedRule(windowMs)], maxKeyLength: 4096 })));
    return l;
  }
  /** The limit per `windowMs` that a process learned down for `key` (undefined: none). */
  async learnedLimit(key: string, windowMs: number): Promise<number | undefined> {
    const left = (await this.learnedLimiter(windowMs).peek(key, 0)).remaining;
    return left < MAX_SHARED_LIMIT ? Math.max(1, left) : undefined;
  }
  /** Lower the shared limit per `windowMs` of `key` to `limit` (never raises it). */
  async lowerLimit(key: string, windowMs: number, limit: number): Promise<void> {
    if (limit >= MAX_SHARED_LIMIT) return;
    const limiter = this.learnedLimiter(windowMs);
    const take = (await limiter.peek(key, 0)).remaining - Math.max(1, limit);
    if (take > 0) await limiter.consume(key, take);
  }
  /** Ms left of the pause of `key` (0: none). */
  async remaining(key: string): Promise<number> {
    return pauseLeft(await this.checker.peek(key, 1));
  }
  /** Make the pause of `key` last at least `ms` from now (never shortens it). */
  async extend(key: string, ms: number): Promise<void> {
    const add = Math.ceil(Math.min(ms, DAY_MS) - (await this.remaining(key)));
    if (add > 0) await this.setter.consume(key, add * 1000);
  }
  /** End the pause of `key`. */
  clear(key: string): Promise<void> {
    return this.setter.reset(key);
  }
}

/**
 * Ms left of a shared pause according to a decision that included the checker rule, checked with
 * `cost`. The checker admits a request up to its tolerance (10 ms) before the pause ends: what
 * counts is the end itself. A process that resumed on the checker's word sent its request into
 * the last 10 ms of a penalty another process had been refused into, restarting it; with a penalty
 * as long as the pause this repeated every second (up to 9 429s in the 3-process spec).
 */
export function pauseLeft(d: Decision, cost = 1): number {
  for (const o of d.policies) {
    if (o.policy !== NAME) continue;
    const ahead = o.allowed ? o.resetMs - cost / 1000 : o.retryAfterMs + (MAX_CHECKED_COST - cost) / 1000;
    // Less than a millisecond ahead: over (the store's clock and ours may differ by that much).
    return ahead > 1 ? ahead : 0;
  }
  return 0;
}
