import type { StateCodec } from '../algorithm.js';

/**
 * A sliding log in Redis: a list, oldest first, of `<stamp µs>:<units>:<total>`, where `<total>`
 * is the running sum of units up to that entry (what lets the script count live units without a
 * scan). The memory store keeps one stamp per unit; units with the same stamp share an entry here.
 */
export const slidingLogCodec: StateCodec<readonly number[]> = {
  redisType: 'list',
  encode: (log) => {
    const out: string[] = [];
    let total = 0;
    for (let i = 0; i < log.length; ) {
      const stamp = log[i] as number;
      let n = 0;
      while (i < log.length && log[i] === stamp) {
        n++;
        i++;
      }
      total += n;
      out.push(`${stamp}:${n}:${total}`);
    }
    return out;
  },
  decode: (entries) => {
    const log: number[] = [];
    for (const e of entries) {
      const [stamp, n] = e.split(':').map(Number);
      for (let i = 0; i < (n as number); i++) log.push(stamp as number);
    }
    return log;
  },
};
