/**
 * Forwarding to upstreams: one undici `Pool` per upstream (keep-alive connections, bounded
 * count), bodies streamed both ways (the client's request stream is the upstream body; the
 * upstream's response is written straight into the client response with backpressure, never
 * buffered whole), hop-by-hop headers removed in both directions (RFC 9110 §7.6.1, including the
 * ones the `Connection` header names), and upstream failures answered as problem+json:
 * 502 (refused, reset, unreachable) or 504 (connect / headers / body timeout).
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Pool } from 'undici';
import { problem, problemBody, PROBLEM_CONTENT_TYPE } from '../http/problem.js';
import type { UpstreamConfig } from './config.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'http2-settings']);
/** Headers a client must not be able to forge towards the upstream: the gateway sets them. */
const GATEWAY_SET = new Set(['x-sluice-consumer', 'x-sluice-tier', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-request-id']);

/**
 * Whether a client header must not reach the upstream because of its underscores. CGI-style
 * stacks (WSGI, PHP-FPM, Rack) map both `-` and `_` to `HTTP_X_SLUICE_CONSUMER`, so
 * `X_Sluice_Consumer` would read as the gateway-set header: such spellings of gateway-set or
 * hop-by-hop names are always dropped; `dropAll` drops every underscore header (nginx's default).
 */
export function droppedForUnderscore(name: string, dropAll: boolean): boolean {
  if (!name.includes('_')) return false;
  if (dropAll) return true;
  const dashed = name.replaceAll('_', '-');
  return GATEWAY_SET.has(dashed) || HOP_BY_HOP.has(dashed);
}

/**
 * A consumer `sub` or tier as a header value. Header values are bytes (undici refuses anything
 * outside Latin-1, and Latin-1 itself is ambiguous to upstreams), so `%`, controls and every
 * non-ASCII character are percent-encoded as UTF-8; plain ASCII names pass unchanged, and
 * `decodeURIComponent` on the upstream recovers the original.
 */
export function headerSafe(value: string): string {
  // toWellFormed: a lone surrogate (possible in a JWT claim) would make encodeURIComponent throw.
  return /^[\x20-\x24\x26-\x7e]*$/.test(value) ? value : encodeURIComponent(value.toWellFormed());
}

/** Characters a path segment may carry unencoded (RFC 3986 pchar without pct-encoded). */
const PCHAR = /[^A-Za-z0-9\-._~!$&'()*+,;=:@]/g;
const encodeSegment = (s: string) => s.replace(PCHAR, (c) => encodeURIComponent(c));

/**
 * The upstream target of a route with `stripPrefix`, built from the decoded segments the route
 * matched (as nginx does for `proxy_pass` with a URI), never by cutting the raw URL: a raw cut
 * after a decoded match turns `/%70ublic/hello` into `/ic/hello`. The rest of the path is
 * re-encoded (only characters a segment cannot carry); the query is passed on as received.
 */
export function strippedTarget(segments: readonly string[], prefix: string, url: string): string {
  const q = url.indexOf('?');
  const query = q < 0 ? '' : url.slice(q);
  const decoded = `/${segments.join('/')}`;
  const p = prefix.replace(/\/+$/, '');
  let rest: string;
  if (decoded.startsWith(p)) rest = decoded.slice(p.length);
  else rest = `/${segments.slice(p.split('/').length - 1).join('/')}`;
  if (rest.charCodeAt(0) !== 47) rest = `/${rest}`;
  return rest.split('/').map(encodeSegment).join('/') + query;
}

/** Names listed in a `Connection` header (also hop-by-hop). */
function connectionTokens(v: string | string[] | undefined): Set<string> | undefined {
  if (v === undefined) return undefined;
  const s = Array.isArray(v) ? v.join(',') : v;
  const out = new Set<string>();
  for (const t of s.split(',')) {
    const n = t.trim().toLowerCase();
    if (n !== '' && n !== 'close' && n !== 'keep-alive') out.add(n);
  }
  return out.size === 0 ? undefined : out;
}

/** What a forwarded request needs beyond the client request. */
export interface ForwardContext {
  /** Path and query to send upstream (already rewritten). */
  target: string;
  requestId: string;
  /** X-Forwarded-For to send: the socket address, after the client's own header only when `server.trustProxy` believes it. */
  forwardedFor: string;
  consumer?: { sub: string; tier?: string };
  /** Headers to add to the response (rate-limit headers, x-request-id). */
  responseHeaders: Record<string, string>;
  /** Problem `instance` (the request path). */
  path: string;
  buildId: string;
  /** Drop every request header whose name contains `_` (`server.dropUnderscoreHeaders`). */
  dropUnderscoreHeaders?: boolean;
  /** Called once with the final status (observability, failed-auth counting) and the upstream's response headers when it answered (costs read from the response). */
  done(status: number, upstreamHeaders?: Record<string, string | string[] | undefined>): void;
}

/** One upstream: its pool and settings. */
export class Upstream {
  readonly pool: Pool;
  private readonly host: string;
  private readonly basePath: string;

  constructor(
    readonly name: string,
    readonly config: UpstreamConfig,
  ) {
    const u = new URL(config.url);
    this.host = u.host;
    this.basePath = u.pathname === '/' ? '' : u.pathname.replace(/\/+$/, '');
    this.pool = new Pool(u.origin, {
      connections: config.connections,
      connectTimeout: config.connectTimeoutMs,
      headersTimeout: config.headersTimeoutMs,
      bodyTimeout: config.bodyTimeoutMs,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      // The pool must not buffer bodies: streaming is the contract.
      pipelining: 1,
    });
  }

  /** Forward `req` and stream the answer into `res`. Never throws; failures become 502/504. */
  forward(req: IncomingMessage, res: ServerResponse, ctx: ForwardContext): void {
    const inH = req.headers;
    const dropIn = connectionTokens(inH.connection);
    const headers: Record<string, string | string[]> = {};
    const dropAll = ctx.dropUnderscoreHeaders === true;
    for (const name in inH) {
      if (HOP_BY_HOP.has(name) || GATEWAY_SET.has(name) || dropIn?.has(name) || droppedForUnderscore(name, dropAll)) continue;
      const v = inH[name];
      if (v !== undefined) headers[name] = v;
    }
    if (!this.config.preserveHost) headers.host = this.host;
    headers['x-forwarded-for'] = ctx.forwardedFor;
    headers['x-forwarded-proto'] = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    if (typeof inH.host === 'string') headers['x-forwarded-host'] = inH.host;
    headers['x-request-id'] = ctx.requestId;
    if (ctx.consumer !== undefined) {
      headers['x-sluice-consumer'] = headerSafe(ctx.consumer.sub);
      if (ctx.consumer.tier !== undefined) headers['x-sluice-tier'] = headerSafe(ctx.consumer.tier);
    }
    const hasBody = (inH['content-length'] !== undefined && inH['content-length'] !== '0') || inH['transfer-encoding'] !== undefined;

    // Client gone before the answer is complete: abort the upstream request. undici accepts any
    // EventEmitter with an `aborted` flag as a signal; using the response itself avoids an
    // AbortController per request (EventTarget machinery measured at several µs per request).
    let aborted = false;
    const onClose = () => {
      if (!res.writableFinished) {
        aborted = true;
        res.emit('abort');
      }
    };
    res.once('close', onClose);

    let status = 502;
    let upstreamHeaders: Record<string, string | string[] | undefined> | undefined;
    this.pool.stream(
      {
        path: this.basePath + ctx.target,
        method: req.method as 'GET',
        headers,
        body: hasBody ? req : null,
        signal: res as unknown as NodeJS.EventEmitter,
        opaque: res,
      },
      ({ statusCode, headers: upH }) => {
        status = statusCode;
        upstreamHeaders = upH;
        const dropOut = connectionTokens(upH.connection as string | string[] | undefined);
        const out: OutgoingHttpHeaders = {};
        for (const name in upH) {
          if (HOP_BY_HOP.has(name) || dropOut?.has(name)) continue;
          out[name] = upH[name];
        }
        const extra = ctx.responseHeaders;
        for (const name in extra) out[name] = extra[name];
        res.writeHead(statusCode, out);
        return res;
      },
      (err) => {
        res.removeListener('close', onClose);
        if (err == null) {
          ctx.done(status, upstreamHeaders);
          return;
        }
        if (res.headersSent) {
          // Mid-body failure: the client must see a truncated response, not a clean end.
          res.destroy(err);
          ctx.done(status, upstreamHeaders);
          return;
        }
        if (aborted || res.destroyed) {
          ctx.done(499);
          return;
        }
        const code = (err as { code?: string }).code ?? '';
        const timeout = code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
        const s = timeout ? 504 : 502;
        const detail = timeout
          ? code === 'UND_ERR_CONNECT_TIMEOUT'
            ? `upstream "${this.name}" did not accept a connection within ${this.config.connectTimeoutMs} ms`
            : `upstream "${this.name}" did not respond within ${code === 'UND_ERR_HEADERS_TIMEOUT' ? this.config.headersTimeoutMs : this.config.bodyTimeoutMs} ms`
          : `upstream "${this.name}" is unreachable or failed (${code || (err as Error).message})`;
        sendProblem(res, s, detail, ctx.path, ctx.requestId, ctx.buildId, ctx.responseHeaders);
        ctx.done(s);
      },
    );
  }

  /** Close the pool after in-flight requests finish. */
  close(): Promise<void> {
    return this.pool.close();
  }
}

/** A problem+json body in the same shape as the HTTP layer's 429. */
export function problemText(status: number, detail: string, instance: string, requestId: string, buildId: string): string {
  return problemBody(problem(status, detail, instance, { requestId, timestamp: new Date().toISOString(), buildId }));
}

/** Send a problem+json response (if nothing was sent yet). */
export function sendProblem(res: ServerResponse, status: number, detail: string, instance: string, requestId: string, buildId: string, extra: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const body = problemText(status, detail, instance, requestId, buildId);
  res.writeHead(status, { ...extra, 'content-type': PROBLEM_CONTENT_TYPE, 'content-length': Buffer.byteLength(body), 'x-request-id': requestId, 'cache-control': 'no-store' });
  res.end(body);
}
