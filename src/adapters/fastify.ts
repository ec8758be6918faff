/**
 * `sluice/fastify`: a Fastify plugin (an `onRequest` hook) over the same policy engine.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { sluiceRateLimit } from 'sluice/fastify';
 * const app = Fastify();
 * await app.register(sluiceRateLimit, { requestsAllowed: 100, timeWindowMinutes: 1 });
 * ```
 * The plugin is wrapped with `fastify-plugin`, so it applies to every route of the instance it is
 * registered on; for a single route use `rateLimitHook(options)` in the route's `onRequest`.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import type { PolicyEngine, PolicyResult } from '../http/engine.js';
import { pathOf, type HttpRequestInfo } from '../http/request.js';
import { defaultUser, engineOf, type AdapterOptions } from './common.js';

/** Options of the Fastify plugin / hook. */
export type FastifyRateLimitOptions = AdapterOptions<FastifyRequest>;

const results = new WeakMap<FastifyRequest, PolicyResult>();

/** Report a response to its request's result (once: `complete` ignores a second call). */
function completeWith(request: FastifyRequest, reply: FastifyReply): void {
  results.get(request)?.complete(reply.statusCode, (name) => {
    const v = reply.getHeader(name);
    return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : String(v);
  });
}

/** Build the `onRequest` hook (and the `onResponse` hook that reports statuses when needed). */
export function rateLimitHooks(options: FastifyRateLimitOptions): {
  engine: PolicyEngine;
  onRequest: onRequestHookHandler;
  onResponse: ((request: FastifyRequest, reply: FastifyReply) => Promise<void>) | undefined;
} {
  const engine = engineOf(options);
  const getUser = options.getUser ?? (defaultUser as (r: FastifyRequest) => HttpRequestInfo['user']);
  const getApiKey = options.getApiKey;
  const needsCompletion = engine.needsCompletion;
  const apply = (request: FastifyRequest, reply: FastifyReply, result: PolicyResult, done: (err?: Error) => void) => {
    if (result.action === 'deny') {
      // A Buffer, so Fastify keeps our exact content-type (it appends a charset to strings).
      reply.code(result.status).headers(result.headers).send(Buffer.from(result.body ?? ''));
      return;
    }
    reply.headers(result.headers);
    if (needsCompletion) {
      results.set(request, result);
      // onResponse runs on 'finish' only: a client resetting after the headers went out must
      // still be charged what the response reported (as node:http, Express and the gateway do).
      const raw = reply.raw;
      raw.once('close', () => {
        if (raw.headersSent && !raw.writableFinished) completeWith(request, reply);
      });
    }
    done();
  };
  // A callback-style hook: one promise (the engine's) per request instead of an async hook's extra ones.
  const onRequest = function (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) {
    const raw = request.raw;
    const info: HttpRequestInfo = {
      method: request.method,
      path: pathOf(request.url),
      url: request.url,
      headers: request.headers,
      remoteAddress: raw.socket.remoteAddress ?? '',
    };
    const user = getUser(request);
    if (user !== undefined) info.user = user;
    const apiKey = getApiKey?.(request);
    if (apiKey !== undefined) info.apiKey = apiKey;
    let r: PolicyResult | Promise<PolicyResult>;
    try {
      r = engine.evaluate(info);
    } catch (err) {
      return done(err as Error);
    }
    if (r instanceof Promise) r.then((result) => apply(request, reply, result, done), done);
    else apply(request, reply, r, done);
  } as onRequestHookHandler;
  const onResponse = needsCompletion
    ? async (request: FastifyRequest, reply: FastifyReply) => {
        completeWith(request, reply);
      }
    : undefined;
  return { engine, onRequest, onResponse };
}

/** An `onRequest` hook for one route (failed-auth policies need the plugin, which also sees responses). */
export function rateLimitHook(options: FastifyRateLimitOptions): onRequestHookHandler {
  return rateLimitHooks(options).onRequest;
}

const plugin: FastifyPluginAsync<FastifyRateLimitOptions> = async (fastify, options) => {
  const { onRequest, onResponse, engine } = rateLimitHooks(options);
  fastify.addHook('onRequest', onRequest);
  if (onResponse !== undefined) fastify.addHook('onResponse', onResponse);
  fastify.addHook('onClose', async () => engine.close());
};

/** The Fastify plugin. Register it with the same options as every other adapter. */
export const sluiceRateLimit = fp(plugin, { fastify: '>=4', name: 'sluice-rate-limit' });
export default sluiceRateLimit;
