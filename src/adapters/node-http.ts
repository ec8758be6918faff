/**
 * `sluice/http`: rate limiting for plain `node:http` servers.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { rateLimit } from 'sluice/http';
 * const limit = rateLimit({ requestsAllowed: 100, timeWindowMinutes: 1 });
 * createServer(async (req, res) => {
 *   if (!(await limit(req, res))) return; // a 429 was sent
 *   res.end('ok');
 * }).listen(3000);
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PolicyEngine, PolicyResult } from '../http/engine.js';
import { pathOf, type HttpRequestInfo } from '../http/request.js';
import { defaultUser, engineOf, type AdapterOptions } from './common.js';

/** Options of the node:http adapter. */
export type NodeRateLimitOptions = AdapterOptions<IncomingMessage>;

/** A limiter for node:http: resolves `true` when the request may proceed, `false` when it answered. */
export interface NodeRateLimiter {
  (req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  readonly engine: PolicyEngine;
}

/** The engine's view of a node:http request. */
export function nodeRequestInfo(
  req: IncomingMessage,
  getUser: (req: IncomingMessage) => HttpRequestInfo['user'],
  getApiKey: ((req: IncomingMessage) => string | undefined) | undefined,
  pathname?: string,
): HttpRequestInfo {
  const url = req.url ?? '/';
  const info: HttpRequestInfo = {
    method: req.method ?? 'GET',
    path: pathname ?? pathOf(url),
    url,
    headers: req.headers,
    remoteAddress: req.socket.remoteAddress ?? '',
  };
  const user = getUser(req);
  if (user !== undefined) info.user = user;
  const apiKey = getApiKey?.(req);
  if (apiKey !== undefined) info.apiKey = apiKey;
  return info;
}

/** A reader of a node response's headers (for costs read from the response). */
export function nodeResponseHeader(res: ServerResponse): (name: string) => string | undefined {
  return (name) => {
    const v = res.getHeader(name);
    return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : String(v);
  };
}

/**
 * Report an admitted request's response to `result.complete` once: on `finish`, or on `close` when
 * the headers went out but the body never finished (the client reset mid-body). The status and
 * the cost the response reported were sent, so they count, as in the gateway: a client must not
 * dodge a response cost by resetting after the headers. Gone before the headers: nothing.
 */
export function completeOnResponse(result: PolicyResult, res: ServerResponse): void {
  const done = () => result.complete(res.statusCode, nodeResponseHeader(res));
  res.once('finish', done);
  res.once('close', () => {
    if (res.headersSent && !res.writableFinished) done();
  });
}

/** Apply an engine result to a node response: headers when allowed, the whole answer when denied. */
export function applyResult(result: PolicyResult, res: ServerResponse): boolean {
  if (result.action === 'deny') {
    if (!res.headersSent) {
      res.writeHead(result.status, result.headers);
      res.end(result.body);
    }
    return false;
  }
  const h = result.headers;
  for (const name in h) res.setHeader(name, h[name] as string);
  return true;
}

// A synchronous decision settles the limiter's promise at once: one shared settled promise per
// answer rather than a new one per request (awaiting it is the same to the caller).
const ADMITTED = Promise.resolve(true);
const ANSWERED = Promise.resolve(false);

/** Create a node:http limiter (`(req, res) => Promise<boolean>`). Options are validated now. */
export function rateLimit(options: NodeRateLimitOptions): NodeRateLimiter {
  const engine = engineOf(options);
  const getUser = options.getUser ?? defaultUser;
  const getApiKey = options.getApiKey;
  const needsCompletion = engine.needsCompletion;
  const finish = (result: PolicyResult, res: ServerResponse): boolean => {
    if (needsCompletion && result.action === 'allow') completeOnResponse(result, res);
    return applyResult(result, res);
  };
  const limiter = (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    try {
      const r = engine.evaluate(nodeRequestInfo(req, getUser, getApiKey));
      return r instanceof Promise ? r.then((x) => finish(x, res)) : finish(r, res) ? ADMITTED : ANSWERED;
    } catch (err) {
      return Promise.reject(err);
    }
  };
  return Object.assign(limiter, { engine });
}

/** Wrap a node:http handler: it runs only for admitted requests. */
export function withRateLimit(
  options: NodeRateLimitOptions,
  handler: (req: IncomingMessage, res: ServerResponse) => unknown,
): (req: IncomingMessage, res: ServerResponse) => void {
  const limiter = rateLimit(options);
  return (req, res) => {
    limiter(req, res).then(
      (ok) => {
        if (ok) return handler(req, res);
        return undefined;
      },
      () => {
        // The engine never rejects; a failure here is a bug in the handler chain: answer 500 once.
        if (!res.headersSent) res.writeHead(500).end();
      },
    );
  };
}
