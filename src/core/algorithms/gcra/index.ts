import type { AlgorithmDefinition } from '../algorithm.js';
import { luaFile } from '../lua.js';
import { MAX_LIMIT } from '../limits.js';
import { gcraCodec } from './codec.js';
import { gcra, gcraCharge } from './step.js';

export { gcra, gcraCharge } from './step.js';

const lua = luaFile(new URL('./gcra.lua', import.meta.url));

/** GCRA (alias `token-bucket`): one stored number per key, the theoretical arrival time. */
export const gcraAlgorithm = {
  name: 'gcra',
  aliases: ['token-bucket'],
  maxLimit: MAX_LIMIT,
  burst: true,
  numericDeadline: true,
  step: gcra,
  charge: gcraCharge,
  // The TAT is the moment the bucket is full again.
  deadAt: (tat) => tat,
  codec: gcraCodec,
  get lua() {
    return lua();
  },
} as const satisfies AlgorithmDefinition<number>;
