import type { AlgorithmDefinition } from '../algorithm.js';
import { MAX_SLIDING_LOG_LIMIT } from '../limits.js';
import { luaFile } from '../lua.js';
import { slidingLogCodec } from './codec.js';
import { slidingLog, slidingLogCharge } from './step.js';

export { slidingLog, slidingLogCharge } from './step.js';

const lua = luaFile(new URL('./sliding-log.lua', import.meta.url));

/** Exact sliding log: one stamp per admitted unit, so `limit` is capped. */
export const slidingLogAlgorithm = {
  name: 'sliding-log',
  aliases: [],
  maxLimit: MAX_SLIDING_LOG_LIMIT,
  burst: false,
  numericDeadline: false,
  step: slidingLog,
  charge: slidingLogCharge,
  deadAt: (log, rule) => (log.length === 0 ? 0 : (log[log.length - 1] as number) + rule.windowUs),
  codec: slidingLogCodec,
  get lua() {
    return lua();
  },
} as const satisfies AlgorithmDefinition<readonly number[]>;
