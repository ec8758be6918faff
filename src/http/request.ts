/**
 * The framework-neutral view of an incoming request that the policy engine works on. Adapters
 * (node:http, Express, Fastify, Hono) and the gateway build one per request; nothing in
 * `src/http` looks at a framework's own request object.
 */

/** An authenticated caller, as an auth step before the limiter found it. */
export interface HttpUser {
  /** Stable subject: the API-key consumer name or the JWT `sub` claim. */
  sub: string;
  /** Plan or tier (e.g. `"free"`, `"premium"`), for per-tier limits in an `identifier` function. */
  tier?: string;
  /** Any other consumer metadata or claims. */
  data?: Record<string, unknown>;
}

/** What the policy engine needs to know about a request. */
export interface HttpRequestInfo {
  /** HTTP method, upper case (`GET`). */
  method: string;
  /** Path without the query string (`/v1/orders`); used as the problem `instance`. */
  path: string;
  /** The full request target, query included, when the adapter has it. */
  url?: string;
  /** Request headers with lower-case names (Node's `IncomingMessage.headers` shape). */
  headers: Record<string, string | string[] | undefined>;
  /** Address of the TCP peer (the socket), before any proxy header is believed. `''` if unknown. */
  remoteAddress: string;
  /** The authenticated caller, when an auth step ran before the limiter. */
  user?: HttpUser;
  /** The API key the caller presented, when an auth step extracted it. */
  apiKey?: string;
}

/** First value of a header (Node joins most repeated headers; a few arrive as arrays). */
export function headerValue(headers: HttpRequestInfo['headers'], name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v[0];
}

/** Strip the query string (and fragment) from a request target. */
export function pathOf(url: string): string {
  let end = url.length;
  const q = url.indexOf('?');
  if (q >= 0) end = q;
  const h = url.indexOf('#');
  if (h >= 0 && h < end) end = h;
  return end === url.length ? url : url.slice(0, end);
}
