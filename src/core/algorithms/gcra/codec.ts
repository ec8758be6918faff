import type { StateCodec } from '../algorithm.js';

/**
 * A GCRA state in Redis: the TAT in µs as one little-endian double (Lua `struct.pack('<d', tat)`),
 * cheaper for the script than decimal text. Earlier versions wrote the decimal text, which the
 * script still reads (see gcra.lua); `decode` reads both too.
 */
export const gcraCodec: StateCodec<number> = {
  redisType: 'string',
  encode: (tat) => {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(tat, 0);
    return [b];
  },
  decode: ([raw]) => {
    const b = raw as Buffer;
    return /^-?\d+$/.test(b.toString('latin1')) ? Number(b.toString('latin1')) : b.readDoubleLE(0);
  },
};
