/**
 * Client IP address resolution that a spoofed header cannot fool.
 *
 * The socket address is the only thing a client cannot forge. Proxy headers (`X-Forwarded-For`,
 * `Forwarded`) are read right to left, starting from the socket address, and an address is
 * believed only while the hop that reported it is trusted (`trustProxy`). Whatever a client puts
 * at the left of the header is therefore ignored unless every proxy after it is trusted, so
 * sending a fake header can never buy a fresh bucket.
 */
import { BlockList, isIP } from 'node:net';
import { SluiceConfigError } from '../core/errors.js';
import { describe } from '../core/rule.js';
import { headerValue, type HttpRequestInfo } from './request.js';

/**
 * Which proxies to trust:
 * - `false` / `0` (default): none; the socket address is the client.
 * - a number `n`: the `n` nearest hops are trusted proxies; the client is the `n`-th address from
 *   the right of `[...forwarded, socket]` (Express's `trust proxy` hop count).
 * - a list of addresses / CIDR ranges (or the names `loopback`, `linklocal`, `uniquelocal`):
 *   walk from the socket leftwards while the current hop is in the list.
 */
export type TrustProxy = false | number | readonly string[];

/** Which header carries the forwarded chain. Only one is read, so a client cannot add the other. */
export type ForwardedHeader = 'x-forwarded-for' | 'forwarded';

const NAMED_RANGES: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** Compiled trust rule: a hop count or a membership test. */
export type TrustRule = { hops: number } | { trusted: (ip: string) => boolean };

/** Validate `trustProxy` at startup. `field` names the option in errors. */
export function compileTrustProxy(value: unknown, field = 'trustProxy'): TrustRule {
  if (value === undefined || value === false || value === 0) return { hops: 0 };
  if (value === true) {
    throw new SluiceConfigError(
      field,
      'true would believe the left-most forwarded address, which any client can forge; give a hop count or a list of proxy CIDRs',
    );
  }
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0 || value > 32) {
      throw new SluiceConfigError(field, `a hop count must be an integer between 0 and 32, got ${value}`);
    }
    return { hops: value };
  }
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value;
  if (!Array.isArray(list) || list.length === 0) {
    throw new SluiceConfigError(field, `must be false, a hop count or a non-empty list of CIDRs, got ${describe(value)}`);
  }
  const block = new BlockList();
  const add = (entry: unknown, i: number) => {
    if (typeof entry !== 'string') throw new SluiceConfigError(`${field}[${i}]`, `must be a string, got ${describe(entry)}`);
    const named = NAMED_RANGES[entry];
    if (named !== undefined) {
      named.forEach((e) => add(e, i));
      return;
    }
    const [addr = '', bitsText] = entry.split('/');
    const family = isIP(addr);
    if (family === 0) throw new SluiceConfigError(`${field}[${i}]`, `not an IP address or CIDR: ${describe(entry)}`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bitsText === undefined) {
      block.addAddress(addr, type);
      return;
    }
    const bits = Number(bitsText);
    const max = family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(bitsText) || bits > max) {
      throw new SluiceConfigError(`${field}[${i}]`, `prefix length must be 0..${max}: ${describe(entry)}`);
    }
    block.addSubnet(addr, bits, type);
  };
  list.forEach(add);
  return {
    trusted: (ip) => {
      const family = isIP(ip);
      return family !== 0 && block.check(ip, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

/**
 * Canonical form of an address: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) becomes IPv4, zone ids and
 * ports are dropped, IPv6 is lower-cased. Returns `undefined` when it is not an IP address.
 */
export function normalizeIp(raw: string): string | undefined {
  let s = raw.trim();
  if (s.length === 0 || s.length > 64) return undefined;
  if (s.startsWith('"') && s.endsWith('"') && s.length > 1) s = s.slice(1, -1);
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) return undefined;
    s = s.slice(1, close);
  } else if (s.indexOf(':') > 0 && s.indexOf(':') === s.lastIndexOf(':')) {
    s = s.slice(0, s.indexOf(':')); // IPv4 with a port: 1.2.3.4:5678
  }
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const family = isIP(s);
  if (family === 4) return s;
  if (family !== 6) return undefined;
  s = s.toLowerCase();
  if (s.startsWith('::ffff:') && isIP(s.slice(7)) === 4) return s.slice(7);
  return s;
}

/** Addresses of the forwarded chain, left (client side) to right (nearest proxy). */
function forwardedChain(headers: HttpRequestInfo['headers'], header: ForwardedHeader): string[] {
  const raw = headers[header];
  if (raw === undefined) return [];
  // Repeated header lines are one list (RFC 9110 §5.3), in order.
  const text = typeof raw === 'string' ? raw : raw.join(',');
  if (text.length > 8192) return ['invalid']; // a chain this long is an attack; believe nothing in it
  const parts = text.split(',');
  if (header === 'x-forwarded-for') return parts;
  return parts.map((element) => {
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim().toLowerCase() === 'for') return pair.slice(eq + 1);
    }
    return 'invalid';
  });
}

/**
 * The client's address under `trust`, normalised; `undefined` when even the socket address is
 * unknown. An unparseable entry in the believed part of the chain stops the walk at the last
 * good (trusted) hop, so garbage can only ever map to a proxy's address, never to a fresh one.
 */
// Socket addresses repeat (keep-alive, busy clients): remember their normal form.
const socketCache = new Map<string, string | undefined>();
function normalizeSocket(raw: string): string | undefined {
  let n = socketCache.get(raw);
  if (n === undefined && !socketCache.has(raw)) {
    n = normalizeIp(raw);
    if (socketCache.size >= 4096) socketCache.clear();
    socketCache.set(raw, n);
  }
  return n;
}

export function clientIp(req: HttpRequestInfo, trust: TrustRule, header: ForwardedHeader = 'x-forwarded-for'): string | undefined {
  const socket = normalizeSocket(req.remoteAddress);
  if (socket === undefined) return undefined;
  if ('hops' in trust && trust.hops === 0) return socket;
  const chain = forwardedChain(req.headers, header);
  let current = socket;
  let i = chain.length - 1;
  let depth = 0;
  for (;;) {
    const believe = 'hops' in trust ? depth < trust.hops : trust.trusted(current);
    if (!believe || i < 0) return current;
    const next = normalizeIp(chain[i] as string);
    if (next === undefined) return current;
    current = next;
    i--;
    depth++;
  }
}

/** Expand an IPv6 address to 8 numbers. Input must already pass `isIP(...) === 6`. */
function ipv6Groups(ip: string): number[] {
  let s = ip;
  const groups: number[] = [];
  // An embedded IPv4 tail (::1.2.3.4) becomes two groups.
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  let v4: number[] = [];
  if (tail.includes('.')) {
    const o = tail.split('.').map(Number);
    v4 = [((o[0] ?? 0) << 8) | (o[1] ?? 0), ((o[2] ?? 0) << 8) | (o[3] ?? 0)];
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const [head = '', rest] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const r = rest === undefined ? [] : rest === '' ? [] : rest.split(':');
  const fill = rest === undefined ? 0 : 8 - h.length - r.length;
  for (const g of h) groups.push(parseInt(g, 16));
  for (let k = 0; k < fill; k++) groups.push(0);
  for (const g of r) groups.push(parseInt(g, 16));
  if (v4.length === 2) groups.splice(6, 2, v4[0] as number, v4[1] as number);
  return groups;
}

/**
 * The bucket an address falls into: IPv4 addresses stand alone; IPv6 addresses share a bucket per
 * `/ipv6Subnet` prefix (default /64, the smallest block an ISP hands a customer, so one client
 * cannot rotate through its 2^64 addresses to get fresh buckets).
 */
export function ipBucket(ip: string, ipv6Subnet = 64): string {
  if (isIP(ip) !== 6) return ip;
  const groups = ipv6Groups(ip);
  const out: string[] = [];
  for (let g = 0; g < 8; g++) {
    const bits = Math.max(0, Math.min(16, ipv6Subnet - g * 16));
    const mask = bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff;
    out.push(((groups[g] ?? 0) & mask).toString(16));
  }
  return `${out.join(':')}/${ipv6Subnet}`;
}

/** Convenience: header value lookup re-exported for adapters. */
export { headerValue };
