import type { StateCodec } from '../algorithm.js';
import type { QuotaState } from './step.js';

/** A quota state in Redis: `<anchor µs>:<period start µs>:<count>`. */
export const quotaCodec: StateCodec<QuotaState> = {
  redisType: 'string',
  encode: (s) => [Buffer.from(`${s.anchor}:${s.start}:${s.count}`)],
  decode: ([raw]) => {
    const [anchor, start, count] = String(raw).split(':').map(Number);
    return { anchor: anchor as number, start: start as number, count: count as number };
  },
};
