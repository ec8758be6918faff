/**
 * Who is this request? Turns a request into the bucket key of one policy (and, for
 * `rateLimitBy: function`, per-request limits). Keys are namespaced by kind (`ip:`, `user:`,
 * `key:`, `hdr:`, `fn:`) so a user called "1.2.3.4" never shares the bucket of that address.
 * API keys and header values are hashed (they may be secrets); user subs and identifier keys are
 * kept readable when short.
 */
import { createHash } from 'node:crypto';
import { clientIp, ipBucket, normalizeIp } from './client-ip.js';
import type { CompiledPolicy, IdentifierResult } from './options.js';
import { headerValue, type HttpRequestInfo } from './request.js';

/** Longest raw identity kept verbatim in a key; longer (or non-well-formed) ones are hashed. */
export const MAX_RAW_IDENTITY = 200;

/** SHA-256, base64url: fixed length, so any header value or key yields a valid store key. */
export function hashIdentity(value: string): string {
  return createHash('sha256').update(value, 'utf16le').digest('base64url');
}

/** Keep short well-formed identities readable (in logs and Redis), hash the rest. */
function safe(value: string): string {
  return value.length <= MAX_RAW_IDENTITY && value.isWellFormed() ? value : `#${hashIdentity(value)}`;
}

/** The bucket key of an identifier function's `key` (`fn:` + the key, hashed when long): the gateway addresses consumer buckets with it. */
export function identifierKey(raw: string): string {
  return `fn:${safe(raw)}`;
}

/** Result of identifying a request for one policy. */
export type Identity =
  /** Limit under `key`; `limits` set when an identifier function overrode the policy's limits. */
  | { kind: 'key'; key: string; limits?: IdentifierResult }
  /** The identifier function said: do not limit this request. */
  | { kind: 'skip' }
  /** Nothing to identify the request by (no user / key / header / address). */
  | { kind: 'unidentified' };

/** The client IP bucket key of a request under a policy's trust settings, or undefined. */
export function ipKey(req: HttpRequestInfo, policy: CompiledPolicy): string | undefined {
  const trust = policy.trust;
  if ('hops' in trust && trust.hops === 0) return socketKey(req.remoteAddress, policy.ipv6Subnet);
  const ip = clientIp(req, trust, policy.forwardedHeader);
  return ip === undefined ? undefined : `ip:${ipBucket(ip, policy.ipv6Subnet)}`;
}

// Trusting no proxy, the key is a function of the socket address (and the IPv6 prefix length)
// alone, and socket addresses repeat (keep-alive, busy clients): each key is worked out once
// rather than normalising, classifying and concatenating per request. '' stands for "no key".
const socketKeys: Map<string, string>[] = [];
function socketKey(raw: string, ipv6Subnet: number): string | undefined {
  const keys = (socketKeys[ipv6Subnet] ??= new Map());
  let k = keys.get(raw);
  if (k === undefined) {
    const ip = normalizeIp(raw);
    k = ip === undefined ? '' : `ip:${ipBucket(ip, ipv6Subnet)}`;
    if (keys.size >= 4096) keys.clear();
    keys.set(raw, k);
  }
  return k === '' ? undefined : k;
}

const UNIDENTIFIED: Identity = { kind: 'unidentified' };
const SKIP: Identity = { kind: 'skip' };

/**
 * Identify `req` for `policy`. Synchronous except for `rateLimitBy: function`, whose identifier may
 * return a promise. Throws (or rejects) with a TypeError when an identifier returns something
 * that is not `{ key: string, ... }`, undefined or null.
 */
export function identify(req: HttpRequestInfo, policy: CompiledPolicy): Identity | Promise<Identity> {
  switch (policy.rateLimitBy) {
    case 'ip': {
      const k = ipKey(req, policy);
      return k === undefined ? UNIDENTIFIED : { kind: 'key', key: k };
    }
    case 'all':
      return { kind: 'key', key: 'all' };
    case 'user': {
      const sub = req.user?.sub;
      return typeof sub === 'string' && sub.length > 0 ? { kind: 'key', key: `user:${safe(sub)}` } : UNIDENTIFIED;
    }
    case 'apiKey': {
      const k = req.apiKey ?? headerValue(req.headers, policy.apiKeyHeader);
      // API keys are secrets: only their hash goes to the store (and to logs).
      return typeof k === 'string' && k.length > 0 ? { kind: 'key', key: `key:${hashIdentity(k)}` } : UNIDENTIFIED;
    }
    case 'header': {
      const v = headerValue(req.headers, policy.headerName as string);
      // Header values are often credentials (`authorization`, `x-api-key`): like API keys, only
      // their hash reaches the store and the logs.
      return v !== undefined && v.length > 0 ? { kind: 'key', key: `hdr:${hashIdentity(v)}` } : UNIDENTIFIED;
    }
    case 'compound': {
      const k = (policy.compound as NonNullable<CompiledPolicy['compound']>)(req);
      return k === undefined ? UNIDENTIFIED : { kind: 'key', key: k };
    }
    case 'function': {
      const out = (policy.identifier as NonNullable<CompiledPolicy['identifier']>)(req, policy.name);
      return out instanceof Promise ? out.then((r) => fromIdentifier(r, policy.name)) : fromIdentifier(out, policy.name);
    }
  }
}

function fromIdentifier(r: IdentifierResult | undefined | null, name: string): Identity {
  if (r === undefined || r === null) return SKIP;
  if (typeof r !== 'object' || typeof r.key !== 'string') {
    throw new TypeError(`policy "${name}": identifier must return { key: string, ... }, undefined or null; got key of type ${typeof (r as { key?: unknown })?.key}`);
  }
  const limits = r.requestsAllowed !== undefined || r.timeWindowMinutes !== undefined || r.quotaAnchor !== undefined ? r : undefined;
  const key = identifierKey(r.key);
  return limits === undefined ? { kind: 'key', key } : { kind: 'key', key, limits };
}
