/**
 * Redis key layout: `<prefix>{<tag>}:<rule.id>`.
 *
 * Every rule of one user key shares the hash tag `{<tag>}`, so all of them live in the same Redis
 * Cluster slot and one script can touch them atomically. Redis hashes only the bytes between the
 * first `{` and the first `}` after it, so the user key is escaped into the tag:
 * `%` → `%25`, `{` → `%7B`, `}` → `%7D` (percent-encoding, hence injective: two different user keys
 * never share a tag), and the empty key becomes the lone `%` (a `{}` tag would be ignored by Redis
 * and scatter the rules over slots; a lone `%` cannot come out of escaping a non-empty key).
 * The prefix must not contain braces, so the first `{` of a state key is always ours.
 */

const SPECIAL = /[%{}]/g;
const ESCAPES: Record<string, string> = { '%': '%25', '{': '%7B', '}': '%7D' };

/** The hash tag body for a user key (see the module comment). */
export function tagOf(key: string): string {
  if (key.length === 0) return '%';
  // Fast path: most keys have none of the three characters.
  if (key.indexOf('%') < 0 && key.indexOf('{') < 0 && key.indexOf('}') < 0) return key;
  return key.replace(SPECIAL, (c) => ESCAPES[c] as string);
}

/** `<prefix>{<tag>}` — the part of every state key that depends on the user key. */
export function baseKey(prefix: string, key: string): string {
  return `${prefix}{${tagOf(key)}}`;
}

// CRC16/XMODEM, the hash Redis Cluster uses: slot = crc16(tag) mod 16384.
const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  TABLE[i] = c;
}

/** The Redis Cluster slot of every state key of `key` (they all share the tag). */
export function slotOf(key: string): number {
  const bytes = Buffer.from(tagOf(key), 'utf8');
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) {
    crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ (bytes[i] as number)) & 0xff] as number);
  }
  return crc & 16383;
}
