import type { Rule } from '../rule.js';
import type { Step } from './step.js';

/**
 * How an algorithm's state is written in Redis: the Lua in the algorithm's folder reads and writes
 * exactly this form, and a conformance spec round-trips it through the script.
 */
export interface StateCodec<S> {
  /** The Redis type the state is kept in. */
  readonly redisType: 'string' | 'list';
  /** The state as stored (bytes): one value for a string, the elements (head first) for a list. */
  encode(state: S): Buffer[];
  /** The state from what is stored (as `encode` gives it). */
  decode(stored: readonly Buffer[]): S;
}

/**
 * One counting algorithm: everything a store needs to run it, so adding an algorithm is one folder
 * under src/core/algorithms/ (its step, codec, Lua and this value) listed in the registry, plus
 * its conformance cases. Stores and rule compilation read these fields instead of switching on
 * the algorithm's name.
 */
export interface AlgorithmDefinition<S = unknown> {
  /** The name in `LimitOptions.algorithm` and in every rule id. */
  readonly name: string;
  /** Other names accepted in options for this algorithm (e.g. `token-bucket` for `gcra`). */
  readonly aliases: readonly string[];
  /** Largest `limit` accepted (state size may grow with it). */
  readonly maxLimit: number;
  /** Whether `burst` applies (otherwise giving it is a configuration error). */
  readonly burst: boolean;
  /**
   * True when the state is one number that is itself the time (µs) after which it stops
   * mattering, as a GCRA TAT is: the memory store then keeps it in a typed array with no
   * separate deadline (its hot path).
   */
  readonly numericDeadline: boolean;
  /** The pure step of (state, now): a fresh key has state `undefined`. */
  step(state: S | undefined, now: number, rule: Rule, cost: number): Step<S | undefined>;
  /**
   * The state after forcing `cost` more units in (a positive integer), even past the limit: what
   * a response's real cost does after the request was admitted (`Store.charge`). Pure, and
   * unconditional: the state may go beyond the limit (an overdraft). `step` then refuses every
   * cost until the overdraft is paid back (the window passes, the bucket refills), reporting
   * `remaining` 0 and the exact wait until `cost` fits again as `retryAfterMs`.
   */
  charge(state: S | undefined, now: number, rule: Rule, cost: number): S;
  /** When `state` stops mattering (µs): after that the key is as good as absent. */
  deadAt(state: S, rule: Rule): number;
  /** The Redis form of the state. */
  readonly codec: StateCodec<S>;
  /**
   * True for an algorithm no limit can name in `algorithm` (its rules are built by its own
   * module, as the block's are): left out of {@link ALGORITHM_OPTIONS} and `compileRule`.
   */
  readonly internal?: boolean;
  /**
   * The four numbers after the name in the Redis script's rule spec, when they are not the
   * default `burst, windowUs, intervalUs, tauUs` (the Lua file documents what it reads).
   */
  redisSpec?(rule: Rule): readonly [number, number, number, number];
  /**
   * Lua source that registers the algorithm in the Redis decide script: it assigns
   * `ALGORITHMS['<name>'] = { read = ..., step = ..., commit = ... }` (contract in
   * src/stores/redis/decide.lua). Read from the `.lua` file next to the algorithm on first use.
   */
  readonly lua: string;
}
