import type { StateCodec } from '../algorithm.js';
import type { FixedWindowState } from './step.js';

/** A fixed-window state in Redis: `<start µs>:<count>`. */
export const fixedWindowCodec: StateCodec<FixedWindowState> = {
  redisType: 'string',
  encode: (s) => [Buffer.from(`${s.start}:${s.count}`)],
  decode: ([raw]) => {
    const [start, count] = String(raw).split(':').map(Number);
    return { start: start as number, count: count as number };
  },
};
