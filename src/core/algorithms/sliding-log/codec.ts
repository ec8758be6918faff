import type { StateCodec } from '../algorithm.js';

/** Bytes of one stored entry: three little-endian doubles. */
const ENTRY = 24;

/**
 * A sliding log in Redis: a list, oldest first, of 24-byte entries (stamp µs, units, total) as
 * little-endian doubles (Lua `struct.pack('<ddd', ...)`), where total is the running sum of units
 * up to that entry: what lets the script count live units without a scan. The memory store keeps
 * one stamp per unit; units with the same stamp share an entry here.
 */
export const slidingLogCodec: StateCodec<readonly number[]> = {
  redisType: 'list',
  encode: (log) => {
    const out: Buffer[] = [];
    let total = 0;
    for (let i = 0; i < log.length; ) {
      const stamp = log[i] as number;
      let n = 0;
      while (i < log.length && log[i] === stamp) {
        n++;
        i++;
      }
      total += n;
      const entry = Buffer.alloc(ENTRY);
      entry.writeDoubleLE(stamp, 0);
      entry.writeDoubleLE(n, 8);
      entry.writeDoubleLE(total, 16);
      out.push(entry);
    }
    return out;
  },
  decode: (entries) => {
    const log: number[] = [];
    for (const e of entries) {
      if (e.length !== ENTRY) throw new Error(`sliding-log entry of ${e.length} bytes, expected ${ENTRY}`);
      const stamp = e.readDoubleLE(0);
      const n = e.readDoubleLE(8);
      for (let i = 0; i < n; i++) log.push(stamp);
    }
    return log;
  },
};
