import type { AlgorithmDefinition } from '../algorithm.js';
import { MAX_LIMIT } from '../limits.js';
import { luaFile } from '../lua.js';
import { slidingWindowCodec } from './codec.js';
import { slidingWindow, slidingWindowCharge, type SlidingWindowState } from './step.js';

export { slidingWindow, slidingWindowCharge, type SlidingWindowState } from './step.js';

const lua = luaFile(new URL('./sliding-window.lua', import.meta.url));

/** Sliding window counter: the weighted two-window estimate. */
export const slidingWindowAlgorithm = {
  name: 'sliding-window',
  aliases: [],
  maxLimit: MAX_LIMIT,
  burst: false,
  numericDeadline: false,
  step: slidingWindow,
  charge: slidingWindowCharge,
  // The current window's count weighs on the next window too.
  deadAt: (s, rule) => s.start + 2 * rule.windowUs,
  codec: slidingWindowCodec,
  get lua() {
    return lua();
  },
} as const satisfies AlgorithmDefinition<SlidingWindowState>;
