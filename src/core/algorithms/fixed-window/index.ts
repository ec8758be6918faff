import type { AlgorithmDefinition } from '../algorithm.js';
import { MAX_LIMIT } from '../limits.js';
import { luaFile } from '../lua.js';
import { fixedWindowCodec } from './codec.js';
import { fixedWindow, fixedWindowCharge, type FixedWindowState } from './step.js';

export { fixedWindow, fixedWindowCharge, type FixedWindowState } from './step.js';

const lua = luaFile(new URL('./fixed-window.lua', import.meta.url));

/** Fixed window: a counter per epoch-aligned window. */
export const fixedWindowAlgorithm = {
  name: 'fixed-window',
  aliases: [],
  maxLimit: MAX_LIMIT,
  burst: false,
  numericDeadline: false,
  step: fixedWindow,
  charge: fixedWindowCharge,
  deadAt: (s, rule) => s.start + rule.windowUs,
  codec: fixedWindowCodec,
  get lua() {
    return lua();
  },
} as const satisfies AlgorithmDefinition<FixedWindowState>;
