/**
 * Fresh request ids: RFC 9562 version-4 UUIDs from the CSPRNG, as `crypto.randomUUID()` makes
 * them, but cheaper per request. `randomUUID()` builds each id from 20 concatenated pieces, and
 * the string is flattened again when Node validates it as a header value; on the engine's plain
 * path that was a fifth of Sluice's own cost per request. Here random bytes are drawn in batches
 * and written out as the ASCII text of a batch of UUIDs, and each id is one flat slice of it.
 */
import { randomFillSync } from 'node:crypto';

/** UUIDs per batch (16 random bytes and 36 characters each). */
const BATCH = 256;
const random = Buffer.alloc(16 * BATCH);
const text = Buffer.alloc(36 * BATCH);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
let next = BATCH;

function refill(): void {
  randomFillSync(random);
  let o = 0;
  for (let r = 0; r < random.length; r += 16) {
    for (let i = 0; i < 16; i++) {
      let b = random[r + i] as number;
      if (i === 6) b = (b & 0x0f) | 0x40; // version 4
      else if (i === 8) b = (b & 0x3f) | 0x80; // variant 10xx (RFC 9562)
      if (i === 4 || i === 6 || i === 8 || i === 10) text[o++] = 0x2d; // '-'
      text[o++] = HEX[b >> 4] as number;
      text[o++] = HEX[b & 0x0f] as number;
    }
  }
  next = 0;
}

/** A new random UUID v4, lower-case (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`). */
export function randomRequestId(): string {
  if (next === BATCH) refill();
  const o = 36 * next++;
  return text.toString('latin1', o, o + 36);
}
