/**
 * Block duration (the penalty box, RingCentral's model): `blockDurationMinutes` on a policy keeps
 * a key refused for that long once the policy has refused it, even after its limit has room
 * again. The block lives in the ordinary store, so it holds across gateway processes on Redis: it
 * is a GCRA rule of one unit per block duration (burst 1); consuming that unit starts the block,
 * a peek (no write) tells whether the key is blocked and for how long, as failed-auth penalties do.
 */
import type { Decision } from '../core/decision.js';
import { SluiceConfigError } from '../core/errors.js';
import { compileRule, describe, MAX_WINDOW_MS, type Rule } from '../core/rule.js';

/** The block options of a policy. */
export interface BlockOptions {
  /** Once refused, the key stays refused this many minutes (fractions allowed). */
  blockDurationMinutes?: number;
  /** Same, in seconds. */
  blockDurationSeconds?: number;
}

/** The rule that holds a policy's blocks (counter `<pool>:block`), or undefined without a block. */
export function compileBlock(o: BlockOptions, pool: string, at: (f: string) => string): Rule | undefined {
  const { blockDurationMinutes: m, blockDurationSeconds: s } = o;
  if (m === undefined && s === undefined) return undefined;
  if (m !== undefined && s !== undefined) throw new SluiceConfigError(at('blockDurationSeconds'), 'give either blockDurationMinutes or blockDurationSeconds, not both');
  const field = m !== undefined ? 'blockDurationMinutes' : 'blockDurationSeconds';
  const v = m ?? s;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new SluiceConfigError(at(field), `must be a positive number, got ${describe(v)}`);
  const ms = m !== undefined ? m * 60_000 : (s as number) * 1000;
  if (ms < 1 || ms > MAX_WINDOW_MS) throw new SluiceConfigError(at(field), `must be between 1 ms and 10 years, got ${ms} ms`);
  return compileRule({ name: `${pool}:block`, algorithm: 'gcra', limit: 1, windowMs: ms, burst: 1 });
}

/** How the engine asks its store. */
type DecideFn = (key: string, rules: readonly Rule[], cost: number, peek: boolean) => Promise<Decision>;

/** Is `key` blocked? Resolves with the peek decision (refused = blocked, `retryAfterMs` = what is left). */
export function blockStatus(decide: DecideFn, block: Rule, key: string): Promise<Decision> {
  return decide(key, [block], 1, true);
}

/** Start `key`'s block (a refusal just happened). Resolves with how long it is blocked (ms). */
export async function startBlock(decide: DecideFn, block: Rule, key: string): Promise<number> {
  await decide(key, [block], 1, false);
  return block.windowMs;
}
