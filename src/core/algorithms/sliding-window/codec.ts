import type { StateCodec } from '../algorithm.js';
import type { SlidingWindowState } from './step.js';

/** A sliding-window state in Redis: `<start µs>:<prev>:<curr>`. */
export const slidingWindowCodec: StateCodec<SlidingWindowState> = {
  redisType: 'string',
  encode: (s) => [Buffer.from(`${s.start}:${s.prev}:${s.curr}`)],
  decode: ([raw]) => {
    const [start, prev, curr] = String(raw).split(':').map(Number);
    return { start: start as number, prev: prev as number, curr: curr as number };
  },
};
