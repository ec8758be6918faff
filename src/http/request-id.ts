/**
 * Fresh request ids: RFC 9562 version-4 UUIDs from the CSPRNG, as `crypto.randomUUID()` makes
 * them, but cheaper per request. `randomUUID()` builds each id from 20 concatenated pieces, and
 * the string is flattened again when Node validates it as a header value; on the engine's plain
 * path that was a fifth of Sluice's own cost per request. Here random bytes are drawn in batches
 * and written out as the text of a batch of UUIDs in one string; each id is a slice of it.
 */
import { randomFillSync } from 'node:crypto';

/** UUIDs per batch (16 random bytes and 36 characters each). */
const BATCH = 256;
const random = Buffer.alloc(16 * BATCH);
const text = Buffer.alloc(36 * BATCH);
/** Where the two hex digits of each of the 16 bytes go within the 36 characters. */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const DIGITS = '0123456789abcdef';
const HIGH = Uint8Array.from({ length: 256 }, (_, b) => DIGITS.charCodeAt(b >> 4));
const LOW = Uint8Array.from({ length: 256 }, (_, b) => DIGITS.charCodeAt(b & 0x0f));
for (let o = 0; o < text.length; o += 36) for (const d of [8, 13, 18, 23]) text[o + d] = 0x2d; // '-', fixed
let batch = '';
let next = BATCH;

function refill(): void {
  randomFillSync(random);
  for (let u = 0; u < BATCH; u++) {
    const r = 16 * u;
    random[r + 6] = ((random[r + 6] as number) & 0x0f) | 0x40; // version 4
    random[r + 8] = ((random[r + 8] as number) & 0x3f) | 0x80; // variant 10xx (RFC 9562)
    const o = 36 * u;
    for (let i = 0; i < 16; i++) {
      const b = random[r + i] as number;
      const at = o + (AT[i] as number);
      text[at] = HIGH[b] as number;
      text[at + 1] = LOW[b] as number;
    }
  }
  batch = text.toString('latin1');
  next = 0;
}

/** A new random UUID v4, lower-case (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`). */
export function randomRequestId(): string {
  if (next === BATCH) refill();
  const o = 36 * next++;
  return batch.slice(o, o + 36);
}
