/**
 * `sluice/hono`: Hono middleware over the same policy engine.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono';
 * import { rateLimiter } from 'sluice/hono';
 * const app = new Hono();
 * app.use('/api/*', rateLimiter({ requestsAllowed: 100, timeWindowMinutes: 1 }));
 * ```
 * The client address comes from `@hono/node-server` (`c.env.incoming.socket`) by default; on
 * other runtimes give `getRemoteAddress`.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { PolicyEngine } from '../http/engine.js';
import type { HttpRequestInfo } from '../http/request.js';
import { engineOf, type AdapterOptions } from './common.js';

/** Options of the Hono middleware. */
export type HonoRateLimitOptions = AdapterOptions<Context> & {
  /** The TCP peer address (default: `@hono/node-server`'s `c.env.incoming.socket.remoteAddress`). */
  getRemoteAddress?: (c: Context) => string | undefined;
};

/** Hono middleware with its engine attached. */
export type HonoRateLimiter = MiddlewareHandler & { readonly engine: PolicyEngine };

function nodeRemoteAddress(c: Context): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress;
}

/** Default user lookup: the context variable `user` when it looks like `{ sub: string }`. */
function contextUser(c: Context): HttpRequestInfo['user'] {
  const u = c.get('user' as never) as unknown;
  return u !== null && typeof u === 'object' && typeof (u as { sub?: unknown }).sub === 'string' ? (u as HttpRequestInfo['user']) : undefined;
}

/** Create Hono middleware. Options are validated now. */
export function rateLimiter(options: HonoRateLimitOptions): HonoRateLimiter {
  const engine = engineOf(options);
  const getUser = options.getUser ?? contextUser;
  const getApiKey = options.getApiKey;
  const getRemoteAddress = options.getRemoteAddress ?? nodeRemoteAddress;
  const needsCompletion = engine.needsCompletion;
  const middleware: MiddlewareHandler = async (c, next) => {
    const headers: Record<string, string> = {};
    // Fetch Headers are already lower-case and join repeated fields with ", ".
    c.req.raw.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const info: HttpRequestInfo = {
      method: c.req.method,
      path: c.req.path,
      url: c.req.url,
      headers,
      remoteAddress: getRemoteAddress(c) ?? '',
    };
    const user = getUser(c);
    if (user !== undefined) info.user = user;
    const apiKey = getApiKey?.(c);
    if (apiKey !== undefined) info.apiKey = apiKey;
    const result = await engine.check(info);
    if (result.action === 'deny') {
      return new Response(result.body, { status: result.status, headers: result.headers });
    }
    await next();
    for (const name in result.headers) c.header(name, result.headers[name] as string);
    if (needsCompletion) {
      const res = c.res;
      result.complete(res.status, (name) => res.headers.get(name) ?? undefined);
    }
    return undefined;
  };
  return Object.assign(middleware, { engine });
}
