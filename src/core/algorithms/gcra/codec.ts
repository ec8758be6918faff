import type { StateCodec } from '../algorithm.js';

/** A GCRA state in Redis: the TAT in µs as a decimal integer string. */
export const gcraCodec: StateCodec<number> = {
  redisType: 'string',
  encode: (tat) => [Buffer.from(String(tat))],
  decode: ([raw]) => Number(String(raw)),
};
