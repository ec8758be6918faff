/**
 * Compound keys: `rateLimitBy` as a list of parts, e.g. `[ip, "header:x-tenant"]` (per IP per
 * tenant) or `[user, route]` (per user per route). Parts: `ip`, `user`, `apiKey`, `method`,
 * `route`, `path`, `header:<name>`, `query:<name>`, `cookie:<name>`, `claim:<name>`.
 *
 * The key is injective: each part's value is length-prefixed (`<length>:<value>`), so no value,
 * whatever separators it holds, can make two different tuples give the same key; values that may
 * be secrets (API keys, headers, cookies) are hashed first, and the whole key is hashed when
 * long. A request missing a part is unidentified: the policy's `onUnidentified` applies (by
 * default its own client-IP bucket, `ip:`; never a shared bucket, never unlimited unless
 * `onUnidentified: allow`).
 */
import { SluiceConfigError } from '../core/errors.js';
import { describe } from '../core/rule.js';
import { clientIp, ipBucket, type ForwardedHeader, type TrustRule } from './client-ip.js';
import { hashIdentity, MAX_RAW_IDENTITY } from './identify.js';
import { headerValue, type HttpRequestInfo } from './request.js';

/** One part of a compound `rateLimitBy`. */
export type KeyPart = 'ip' | 'user' | 'apiKey' | 'method' | 'route' | 'path' | `header:${string}` | `query:${string}` | `cookie:${string}` | `claim:${string}`;

/** A compiled compound key: the bucket key of a request, or undefined when a part is missing. */
export type CompoundKey = (req: HttpRequestInfo) => string | undefined;

const SIMPLE = new Set(['ip', 'user', 'apiKey', 'method', 'route', 'path']);
const NAMED = /^(header|query|cookie|claim):(.+)$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$/;

/** What compiling needs from the policy. */
export interface CompoundContext {
  readonly trust: TrustRule;
  readonly forwardedHeader: ForwardedHeader;
  readonly ipv6Subnet: number;
  readonly apiKeyHeader: string;
  /** The route label for the `route` part (the engine's `route` option). */
  readonly route: string | undefined;
}

function queryValue(req: HttpRequestInfo, name: string): string | undefined {
  const target = req.url ?? req.path;
  const q = target.indexOf('?');
  if (q < 0) return undefined;
  return new URLSearchParams(target.slice(q + 1)).get(name) ?? undefined;
}

function cookieValue(req: HttpRequestInfo, name: string): string | undefined {
  const header = headerValue(req.headers, 'cookie');
  if (header === undefined) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

/** Compile a list of parts. Throws SluiceConfigError naming `<field>[i]`. */
export function compileCompoundKey(parts: unknown, field: string, ctx: CompoundContext): CompoundKey {
  if (!Array.isArray(parts) || parts.length === 0) throw new SluiceConfigError(field, 'must be a non-empty list of key parts');
  if (parts.length > 10) throw new SluiceConfigError(field, 'takes at most 10 parts');
  const seen = new Set<string>();
  const readers = parts.map((p: unknown, i): ((req: HttpRequestInfo) => string | undefined) => {
    const at = `${field}[${i}]`;
    if (typeof p !== 'string') throw new SluiceConfigError(at, `must be a key part string, got ${describe(p)}`);
    if (seen.has(p)) throw new SluiceConfigError(at, `lists "${p}" twice`);
    seen.add(p);
    if (SIMPLE.has(p)) {
      switch (p) {
        case 'ip':
          return (req) => {
            const ip = clientIp(req, ctx.trust, ctx.forwardedHeader);
            return ip === undefined ? undefined : ipBucket(ip, ctx.ipv6Subnet);
          };
        case 'user':
          return (req) => (typeof req.user?.sub === 'string' && req.user.sub.length > 0 ? req.user.sub : undefined);
        case 'apiKey':
          return (req) => {
            const k = req.apiKey ?? headerValue(req.headers, ctx.apiKeyHeader);
            return k !== undefined && k.length > 0 ? hashIdentity(k) : undefined;
          };
        case 'method':
          return (req) => req.method;
        case 'path':
          return (req) => req.path;
        default: {
          const route = ctx.route;
          if (route === undefined) throw new SluiceConfigError(at, '"route" needs the engine\'s route option (the gateway sets it per route)');
          return () => route;
        }
      }
    }
    const m = NAMED.exec(p);
    if (m === null) {
      throw new SluiceConfigError(at, `unknown key part ${describe(p)}; expected ip, user, apiKey, method, route, path, header:<name>, query:<name>, cookie:<name> or claim:<name>`);
    }
    const kind = m[1] as string;
    const name = m[2] as string;
    if (kind === 'header') {
      if (!HEADER_NAME.test(name)) throw new SluiceConfigError(at, `"${name.slice(0, 40)}" is not a valid header name`);
      const lower = name.toLowerCase();
      // Header values and cookies are often credentials: only their hash reaches the store.
      return (req) => {
        const v = headerValue(req.headers, lower);
        return v !== undefined && v.length > 0 ? hashIdentity(v) : undefined;
      };
    }
    if (kind === 'cookie') {
      return (req) => {
        const v = cookieValue(req, name);
        return v !== undefined && v.length > 0 ? hashIdentity(v) : undefined;
      };
    }
    if (kind === 'query') {
      return (req) => {
        const v = queryValue(req, name);
        return v !== undefined && v.length > 0 ? v : undefined;
      };
    }
    return (req) => {
      const v = req.user?.data?.[name];
      if (v === undefined || v === null || v === '') return undefined;
      return typeof v === 'string' ? v : JSON.stringify(v);
    };
  });
  return (req) => {
    let key = '';
    for (const read of readers) {
      const v = read(req);
      if (v === undefined) return undefined;
      key += `${v.length}:${v}`;
    }
    return `cmp:${key.length <= MAX_RAW_IDENTITY && key.isWellFormed() ? key : `#${hashIdentity(key)}`}`;
  };
}
