import type { AlgorithmDefinition } from '../algorithm.js';
import { luaFile } from '../lua.js';
import { blockCodec } from './codec.js';
import { block, type BlockSpec, type BlockState } from './step.js';

export { block, type BlockSpec, type BlockState } from './step.js';
export { blockRule, type BlockRuleOptions } from './rule.js';

const lua = luaFile(new URL('./block.lua', import.meta.url));

/**
 * Block (the penalty box of `blockDurationMinutes`, escalating with `blockEscalation`): internal,
 * its rules come from {@link blockRule}, never from a limit's `algorithm`.
 */
export const blockAlgorithm = {
  name: 'block',
  aliases: [],
  maxLimit: 1,
  burst: false,
  numericDeadline: false,
  internal: true,
  step: block,
  // A charge is a consumption that cannot be refused: it starts a block unless one is running
  // (then the running block stands, as a consume finds it). Stores charge only costs > 0.
  charge: (s, now, rule, cost) => block(s, now, rule, Math.max(1, cost)).next as BlockState,
  // Past the reset period after the block, the key starts again from the first length.
  deadAt: (s, rule) => s.until + (rule.block as BlockSpec).resetUs,
  codec: blockCodec,
  redisSpec: (rule) => {
    const b = rule.block as BlockSpec;
    return [b.multiplier, rule.windowUs, b.maxUs, b.resetUs];
  },
  get lua() {
    return lua();
  },
} as const satisfies AlgorithmDefinition<BlockState>;
