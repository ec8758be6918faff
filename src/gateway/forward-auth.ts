/**
 * The forward-auth decision endpoint: Sluice as the rate-limit service of a proxy that already
 * sits in the data path (nginx `auth_request`, Caddy `forward_auth`, Traefik `ForwardAuth`).
 *
 * The proxy sends a body-less request carrying the original request's headers plus the protocol
 * headers below; Sluice matches its routes on the original method and URI, authenticates the
 * consumer from the original headers, decides with the route's policies and answers:
 * - `200` with the rate-limit headers to copy onto the response (and `X-Sluice-Consumer` /
 *   `X-Sluice-Tier` for the upstream), when the request may proceed;
 * - `429` (or 401 / 403 / 503) with the Problem Details body and `Retry-After`, when it may not.
 *
 * Protocol headers read (first present wins): method `X-Forwarded-Method`, `X-Original-Method`;
 * URI `X-Forwarded-Uri`, `X-Original-URI`, `X-Original-URL`; host `X-Forwarded-Host`. The client
 * address comes from `X-Forwarded-For` only when the proxy's own address is believed by
 * `server.trustProxy`; otherwise the proxy is the client (every caller would share one bucket,
 * which `startGateway` warns about at startup).
 *
 * nginx cannot pass an auth subrequest's body to the client (any status other than 2xx/401/403
 * becomes 500), so a request to the `/nginx` path of this listener also gets the problem body in
 * the `X-Sluice-Problem` header, which nginx's `auth_request_set` can read (docs/proxies.md).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientIp, type TrustRule } from '../http/client-ip.js';
import type { PolicyResult } from '../http/engine.js';
import { requestIdOf } from '../http/problem.js';
import { pathOf } from '../http/request.js';
import type { GatewayRequestInfo } from './policies.js';
import { admit, type Admission } from './admission.js';
import { headerSafe, problemText } from './proxy.js';
import { splitPath } from './routes.js';
import { findRoute, type CompiledRoute, type GatewayState } from './state.js';
import type { ThrottledWarn } from './throttled-log.js';

/** Longest original URI accepted (the proxies' own defaults are 4-8 KiB). */
const MAX_URI = 8192;
const METHOD = /^[A-Z]{1,20}$/;

/** Headers of the forward-auth protocol itself: never part of the original request's identity. */
const PROTOCOL_HEADERS = ['x-forwarded-method', 'x-original-method', 'x-forwarded-uri', 'x-original-uri', 'x-original-url', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-for', 'forwarded', 'x-real-ip'];

/** What the forward-auth handler reads from the running gateway. */
export interface ForwardAuthContext {
  state(): GatewayState;
  /** `server.trustProxy`, compiled: which proxies may tell us the client address. */
  trust(): TrustRule;
  buildId: string;
  /** Called once per answered decision (observability). */
  record?(route: CompiledRoute, info: GatewayRequestInfo, result: PolicyResult | undefined, status: number, ip: string, t0: number): void;
  onError(err: unknown): void;
  /** Warnings that could fire on every request (JWKS unreachable), throttled per topic like the proxy's. */
  warnOnce: ThrottledWarn;
}

function first(req: IncomingMessage, names: readonly string[]): string | undefined {
  for (const n of names) {
    const v = req.headers[n];
    const s = Array.isArray(v) ? v[0] : v;
    if (s !== undefined && s !== '') return s;
  }
  return undefined;
}

/** The problem body as one header line: compact JSON with every non-ASCII character escaped. */
function problemHeader(body: string): string {
  return JSON.stringify(JSON.parse(body) as unknown).replace(/[^\u0020-\u007e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Build the request handler of the forward-auth listener. */
export function createForwardAuthHandler(ctx: ForwardAuthContext): (req: IncomingMessage, res: ServerResponse) => void {
  const answer = (res: ServerResponse, nginx: boolean, status: number, headers: Record<string, string>, body: string | undefined) => {
    if (res.headersSent || res.destroyed) return;
    const h: Record<string, string | number> = { ...headers, 'cache-control': 'no-store' };
    if (body !== undefined) {
      h['content-length'] = Buffer.byteLength(body);
      if (nginx) h['x-sluice-problem'] = problemHeader(body);
    } else h['content-length'] = 0;
    res.writeHead(status, h);
    res.end(body);
  };
  const refuse = (res: ServerResponse, nginx: boolean, status: number, detail: string, instance: string, requestId: string, extra: Record<string, string> = {}) =>
    answer(res, nginx, status, { ...extra, 'content-type': 'application/problem+json', 'x-request-id': requestId }, problemText(status, detail, instance.slice(0, 200), requestId, ctx.buildId));

  return (req, res) => {
    const t0 = Date.now();
    const nginx = pathOf(req.url ?? '/').replace(/\/+$/, '') === '/nginx';
    const requestId = requestIdOf(req.headers['x-request-id']);
    const uri = first(req, ['x-forwarded-uri', 'x-original-uri', 'x-original-url']);
    if (uri === undefined) {
      refuse(res, nginx, 400, 'the proxy sent no X-Forwarded-Uri (or X-Original-URI) header: configure it to pass the original request URI', '/', requestId);
      return;
    }
    if (uri.length > MAX_URI) {
      refuse(res, nginx, 414, `the original URI is longer than ${MAX_URI} characters`, '/', requestId);
      return;
    }
    // An absolute URI (X-Original-URL style) is reduced to its path and query.
    let target = uri;
    if (!target.startsWith('/')) {
      try {
        const u = new URL(target);
        target = `${u.pathname}${u.search}`;
      } catch {
        refuse(res, nginx, 400, 'X-Forwarded-Uri is neither an origin-form path nor an absolute URL', '/', requestId);
        return;
      }
    }
    const method = (first(req, ['x-forwarded-method', 'x-original-method']) ?? req.method ?? 'GET').toUpperCase();
    if (!METHOD.test(method)) {
      refuse(res, nginx, 400, 'X-Forwarded-Method is not an HTTP method', '/', requestId);
      return;
    }
    const path = pathOf(target);
    const segs = splitPath(path);
    if (typeof segs === 'string') {
      refuse(res, nginx, 400, `invalid request path (${segs})`, path, requestId);
      return;
    }
    const st = ctx.state();
    const route = findRoute(st, method, segs, false);
    if (route === undefined) {
      refuse(res, nginx, 404, `no route for ${method} ${path.slice(0, 200)}`, path, requestId);
      return;
    }
    // The client as server.trustProxy believes it; the policies then see it as the socket address,
    // and no forwarding header, so a policy's own trustProxy cannot re-read what the proxy sent.
    const socket: GatewayRequestInfo = { method, path, url: target, headers: req.headers, remoteAddress: req.socket.remoteAddress ?? '' };
    const ip = clientIp(socket, ctx.trust()) ?? socket.remoteAddress;
    const headers: GatewayRequestInfo['headers'] = { ...req.headers };
    for (const h of PROTOCOL_HEADERS) delete headers[h];
    if (requestId !== req.headers['x-request-id']) headers['x-request-id'] = requestId;
    const info: GatewayRequestInfo = { method, path, url: target, headers, remoteAddress: ip };
    const rt = route;

    const done = (result: PolicyResult | undefined, status: number) => {
      result?.complete(status);
      try {
        ctx.record?.(rt, info, result, status, ip, t0);
      } catch (err) {
        ctx.onError(err);
      }
    };
    const decided = (result: PolicyResult | undefined) => {
      if (result !== undefined && result.action === 'deny') {
        answer(res, nginx, result.status, result.headers, result.body);
        done(result, result.status);
        return;
      }
      const out: Record<string, string> = result === undefined ? { 'x-request-id': requestId } : { ...result.headers };
      if (info.user !== undefined) {
        out['x-sluice-consumer'] = headerSafe(info.user.sub);
        if (info.user.tier !== undefined) out['x-sluice-tier'] = headerSafe(info.user.tier);
      }
      answer(res, nginx, 200, out, undefined);
      done(result, 200);
    };
    const answerAdmission = (x: Admission) => {
      if (x.kind === 'unavailable') {
        // Same topic and line as the proxy listener: one outage, one throttled warning.
        ctx.warnOnce(`auth:${rt.name}`, 'cannot check credentials', { route: rt.name, error: x.reason });
        refuse(res, nginx, 503, 'credentials cannot be checked right now; retry later', path, requestId, { 'retry-after': '5' });
        done(undefined, 503);
      } else if (x.kind === 'unauthorized') {
        refuse(res, nginx, 401, x.detail, path, x.result?.requestId ?? requestId, { ...x.result?.headers, 'www-authenticate': 'Bearer realm="sluice"' });
        done(x.result, 401);
      } else decided(x.result);
    };
    const fail = (err: unknown) => {
      ctx.onError(err);
      refuse(res, nginx, 500, 'internal error', path, randomUUID());
      done(undefined, 500);
    };
    try {
      const afterAuth = (a: Parameters<typeof admit>[2]) => {
        const x = admit(rt, info, a);
        if (x instanceof Promise) x.then(answerAdmission, fail);
        else answerAdmission(x);
      };
      const a = rt.auth === 'none' ? ({ kind: 'anonymous' } as const) : st.authenticate(req.headers);
      if (a instanceof Promise) a.then(afterAuth, fail);
      else afterAuth(a);
    } catch (err) {
      fail(err);
    }
  };
}
