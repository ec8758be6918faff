import { InvalidKeyError } from './errors.js';

/** Default longest key, in UTF-16 code units. */
export const DEFAULT_MAX_KEY_LENGTH = 1024;

/**
 * Check a key before it reaches a store. Any string works, binary content included, as long as it
 * is well-formed Unicode (a lone surrogate would be mangled to U+FFFD on the way to Redis and could
 * collide with another key) and not longer than `maxLength`.
 */
export function checkKey(key: unknown, maxLength: number): asserts key is string {
  if (typeof key !== 'string') throw new InvalidKeyError(`expected a string, got ${key === null ? 'null' : typeof key}`);
  if (key.length > maxLength) throw new InvalidKeyError(`length ${key.length} exceeds the maximum of ${maxLength}`);
  if (!key.isWellFormed()) throw new InvalidKeyError('contains a lone UTF-16 surrogate (not well-formed Unicode)');
}

/** Check a cost (weight): a non-negative safe integer. */
export function checkCost(cost: unknown): asserts cost is number {
  if (typeof cost !== 'number' || !Number.isSafeInteger(cost) || cost < 0) {
    throw new RangeError(`cost must be an integer >= 0, got ${String(cost)}`);
  }
}
