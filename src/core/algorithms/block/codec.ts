import type { StateCodec } from '../algorithm.js';
import type { BlockState } from './step.js';

/** A block state in Redis: `<until µs>:<length µs>`. */
export const blockCodec: StateCodec<BlockState> = {
  redisType: 'string',
  encode: (s) => [Buffer.from(`${s.until}:${s.lengthUs}`)],
  decode: ([raw]) => {
    const [until, lengthUs] = String(raw).split(':').map(Number);
    return { until: until as number, lengthUs: lengthUs as number };
  },
};
