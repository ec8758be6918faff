/**
 * A hand-written protobuf encoder for `RateLimitResponse`, the serializer the gRPC server uses.
 * protobufjs (through proto-loader) converts every nested object with `fromObject` before encoding,
 * which made encoding a response with a status and its headers cost about ten times a bare OK; the
 * message is small and fixed, so it is written here field by field (two passes: sizes, then bytes).
 * Field numbers are Envoy's (rls.proto, base.proto); the test suite decodes the output with
 * protobufjs and compares it with protobufjs's own encoding.
 */
import type { DescriptorStatus, RlsResponse } from './service.js';
import type { HeaderValue } from './headers.js';

const CODE = { UNKNOWN: 0, OK: 1, OVER_LIMIT: 2 } as const;
const UNIT = { UNKNOWN: 0, SECOND: 1, MINUTE: 2, HOUR: 3, DAY: 4, MONTH: 5, YEAR: 6, WEEK: 7 } as const;

/** Bytes of a non-negative integer as a varint (values up to 2^53). */
function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/**
 * UTF-8 length of a string, in JS (header names and values are short; Buffer.byteLength's call
 * into C++ costs more than the loop). A lone surrogate counts 3 bytes, as its U+FFFD replacement.
 */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a pair: 2 UTF-16 units, 4 bytes
      i++;
    } else n += 2;
  }
  return n;
}

/** Size of a length-delimited field (one-byte tag) holding `len` bytes. */
const fieldSize = (len: number) => 1 + varintSize(len) + len;

class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  varint(n: number): void {
    while (n >= 128) {
      this.buf[this.pos++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }
  tag(field: number, wire: number): void {
    this.buf[this.pos++] = (field << 3) | wire;
  }
  string(field: number, s: string, bytes: number): void {
    this.tag(field, 2);
    this.varint(bytes);
    if (bytes === s.length) {
      // ASCII: copy the code units.
      for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i);
    } else {
      this.pos += this.buf.write(s, this.pos, 'utf8');
    }
  }
}

function limitSize(s: DescriptorStatus, nameBytes: number): number {
  const l = s.current_limit;
  if (l === undefined) return 0;
  let n = 0;
  if (l.requests_per_unit !== 0) n += 1 + varintSize(l.requests_per_unit);
  n += 1 + varintSize(UNIT[l.unit]);
  if (nameBytes > 0) n += fieldSize(nameBytes);
  return n;
}

function durationSize(s: DescriptorStatus): number {
  const d = s.duration_until_reset;
  if (d === undefined) return -1;
  return (d.seconds !== 0 ? 1 + varintSize(d.seconds) : 0) + (d.nanos !== 0 ? 1 + varintSize(d.nanos) : 0);
}

function statusSize(s: DescriptorStatus, limit: number, duration: number): number {
  let n = 2; // code: OK or OVER_LIMIT, always written
  if (s.current_limit !== undefined) n += fieldSize(limit);
  if (s.limit_remaining !== 0) n += 1 + varintSize(s.limit_remaining);
  if (duration >= 0) n += fieldSize(duration);
  return n;
}

/** Encode a response as Envoy's `RateLimitResponse`. */
export function encodeResponse(r: RlsResponse): Buffer {
  const statuses = r.statuses;
  const headers: readonly HeaderValue[] = r.response_headers_to_add;
  // Pass 1: sizes (kept per status so pass 2 writes the length prefixes without recomputing).
  const sizes = new Array<number>(statuses.length * 4);
  let total = 2; // overall_code
  for (let i = 0; i < statuses.length; i++) {
    const s = statuses[i] as DescriptorStatus;
    const name = s.current_limit?.name;
    const nameBytes = name === undefined || name === '' ? 0 : utf8Length(name);
    const limit = limitSize(s, nameBytes);
    const duration = durationSize(s);
    const size = statusSize(s, limit, duration);
    sizes[i * 4] = nameBytes;
    sizes[i * 4 + 1] = limit;
    sizes[i * 4 + 2] = duration;
    sizes[i * 4 + 3] = size;
    total += fieldSize(size);
  }
  const headerBytes = new Array<number>(headers.length * 2);
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i] as HeaderValue;
    const k = utf8Length(h.key);
    const v = utf8Length(h.value);
    headerBytes[i * 2] = k;
    headerBytes[i * 2 + 1] = v;
    total += fieldSize((k > 0 ? fieldSize(k) : 0) + (v > 0 ? fieldSize(v) : 0));
  }

  // Pass 2: bytes.
  const w = new Writer(Buffer.allocUnsafe(total));
  w.tag(1, 0);
  w.varint(CODE[r.overall_code]);
  for (let i = 0; i < statuses.length; i++) {
    const s = statuses[i] as DescriptorStatus;
    const [nameBytes, limit, duration, size] = [sizes[i * 4] as number, sizes[i * 4 + 1] as number, sizes[i * 4 + 2] as number, sizes[i * 4 + 3] as number];
    w.tag(2, 2);
    w.varint(size);
    w.tag(1, 0);
    w.varint(CODE[s.code]);
    const l = s.current_limit;
    if (l !== undefined) {
      w.tag(2, 2);
      w.varint(limit);
      if (l.requests_per_unit !== 0) {
        w.tag(1, 0);
        w.varint(l.requests_per_unit);
      }
      w.tag(2, 0);
      w.varint(UNIT[l.unit]);
      if (nameBytes > 0) w.string(3, l.name as string, nameBytes);
    }
    if (s.limit_remaining !== 0) {
      w.tag(3, 0);
      w.varint(s.limit_remaining);
    }
    const d = s.duration_until_reset;
    if (d !== undefined) {
      w.tag(4, 2);
      w.varint(duration);
      if (d.seconds !== 0) {
        w.tag(1, 0);
        w.varint(d.seconds);
      }
      if (d.nanos !== 0) {
        w.tag(2, 0);
        w.varint(d.nanos);
      }
    }
  }
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i] as HeaderValue;
    const k = headerBytes[i * 2] as number;
    const v = headerBytes[i * 2 + 1] as number;
    w.tag(3, 2);
    w.varint((k > 0 ? fieldSize(k) : 0) + (v > 0 ? fieldSize(v) : 0));
    if (k > 0) w.string(1, h.key, k);
    if (v > 0) w.string(2, h.value, v);
  }
  if (w.pos !== total) throw new Error(`encodeResponse: wrote ${w.pos} bytes, expected ${total}`);
  return w.buf;
}
