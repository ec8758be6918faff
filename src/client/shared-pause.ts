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

/** Shared pauses in one store. */
export class SharedPauses {
  private readonly setter: Limiter;
  readonly checker: Limiter;
  constructor(store: Store) {
    this.setter = limiterOn(store, { limits: [PAUSE_SET], maxKeyLength: 4096 });
    this.checker = limiterOn(store, { limits: [PAUSE_CHECK], maxKeyLength: 4096 });
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

/** Ms left of a shared pause according to a decision that included the checker rule. */
export function pauseLeft(d: Decision): number {
  for (const o of d.policies) if (o.policy === NAME && !o.allowed) return o.retryAfterMs;
  return 0;
}
