/**
 * Block duration (the penalty box, RingCentral's model): `blockDurationMinutes` on a policy keeps
 * a key refused for that long once the policy has refused it, even after its limit has room
 * again; `blockEscalation` makes each new block of the same key within a reset period last longer
 * (fail2ban's `bantime.increment`), capped. The block lives in the ordinary store (algorithm
 * `block`, src/core/algorithms/block), so it holds, and escalates exactly, across gateway
 * processes on Redis: consuming the block rule starts a block, a peek (no write) tells whether the
 * key is blocked and for how long, as failed-auth penalties do.
 */
import { blockRule } from '../core/algorithms/block/index.js';
import type { Decision } from '../core/decision.js';
import { SluiceConfigError } from '../core/errors.js';
import { describe, MAX_WINDOW_MS, type Rule } from '../core/rule.js';

/** How blocks of a repeat offender grow (all optional: `blockEscalation: {}` takes the defaults). */
export interface BlockEscalationOptions {
  /** Each block within `resetAfterMinutes` of the previous one lasts this many times longer (>= 1). Default 2. */
  multiplier?: number;
  /** The longest a block may last, in minutes (>= the block duration). Default 1440 (a day), or the block duration if longer. */
  maxBlockMinutes?: number;
  /** A key with no new block for this many minutes after its last block ended starts again from the block duration. Default 1440. */
  resetAfterMinutes?: number;
}

/** The block options of a policy. */
export interface BlockOptions {
  /** Once refused, the key stays refused this many minutes (fractions allowed). */
  blockDurationMinutes?: number;
  /** Same, in seconds. */
  blockDurationSeconds?: number;
  /** Longer blocks for repeat offenders (needs a block duration). */
  blockEscalation?: BlockEscalationOptions;
}

const DAY_MINUTES = 1440;

/** Minutes (positive, at most 10 years) to ms. */
function minutesMs(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new SluiceConfigError(field, `must be a positive number of minutes, got ${describe(v)}`);
  const ms = v * 60_000;
  if (ms < 1 || ms > MAX_WINDOW_MS) throw new SluiceConfigError(field, `must be between 1 ms and 10 years, got ${ms} ms`);
  return ms;
}

/** The rule that holds a policy's blocks (counter `<pool>:block`), or undefined without a block. */
export function compileBlock(o: BlockOptions, pool: string, at: (f: string) => string): Rule | undefined {
  const { blockDurationMinutes: m, blockDurationSeconds: s, blockEscalation: e } = o;
  if (m === undefined && s === undefined) {
    if (e !== undefined) throw new SluiceConfigError(at('blockEscalation'), 'needs blockDurationMinutes or blockDurationSeconds (the length of a first block)');
    return undefined;
  }
  if (m !== undefined && s !== undefined) throw new SluiceConfigError(at('blockDurationSeconds'), 'give either blockDurationMinutes or blockDurationSeconds, not both');
  const field = m !== undefined ? 'blockDurationMinutes' : 'blockDurationSeconds';
  const v = m ?? s;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new SluiceConfigError(at(field), `must be a positive number, got ${describe(v)}`);
  const ms = m !== undefined ? m * 60_000 : (s as number) * 1000;
  if (ms < 1 || ms > MAX_WINDOW_MS) throw new SluiceConfigError(at(field), `must be between 1 ms and 10 years, got ${ms} ms`);
  const name = `${pool}:block`;
  if (e === undefined) return blockRule({ name, blockMs: ms, multiplier: 1, maxBlockMs: ms, resetMs: 0 });
  if (e === null || typeof e !== 'object' || Array.isArray(e)) throw new SluiceConfigError(at('blockEscalation'), `must be an object, got ${describe(e)}`);
  const multiplier = e.multiplier ?? 2;
  if (typeof multiplier !== 'number' || !Number.isFinite(multiplier) || multiplier < 1) {
    throw new SluiceConfigError(at('blockEscalation.multiplier'), `must be a number >= 1, got ${describe(multiplier)}`);
  }
  const maxBlockMs = e.maxBlockMinutes === undefined ? Math.max(DAY_MINUTES * 60_000, ms) : minutesMs(e.maxBlockMinutes, at('blockEscalation.maxBlockMinutes'));
  if (maxBlockMs < ms) throw new SluiceConfigError(at('blockEscalation.maxBlockMinutes'), `must be at least the block duration (${ms / 60_000} minutes), got ${maxBlockMs / 60_000}`);
  const resetMs = minutesMs(e.resetAfterMinutes ?? DAY_MINUTES, at('blockEscalation.resetAfterMinutes'));
  return blockRule({ name, blockMs: ms, multiplier, maxBlockMs, resetMs });
}

/** How the engine asks its store. */
type DecideFn = (key: string, rules: readonly Rule[], cost: number, peek: boolean) => Promise<Decision>;

/** Is `key` blocked? Resolves with the peek decision (refused = blocked, `retryAfterMs` = what is left). */
export function blockStatus(decide: DecideFn, block: Rule, key: string): Promise<Decision> {
  return decide(key, [block], 1, true);
}

/**
 * Start `key`'s block (a refusal just happened). Resolves with how long it is blocked (ms) and
 * whether this call started the block: when another request (or process) started it a moment
 * earlier, the key is already blocked and the time left is returned (a block starts once).
 */
export async function startBlock(decide: DecideFn, block: Rule, key: string): Promise<{ started: boolean; blockedMs: number }> {
  const d = await decide(key, [block], 1, false);
  return d.allowed ? { started: true, blockedMs: d.resetMs } : { started: false, blockedMs: d.retryAfterMs };
}
