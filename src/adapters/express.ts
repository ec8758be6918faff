/**
 * `sluice/express`: Express middleware over the same policy engine.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { rateLimit } from 'sluice/express';
 * const app = express();
 * app.use('/api', rateLimit({ requestsAllowed: 100, timeWindowMinutes: 1, headerMode: 'ietf' }));
 * ```
 */
import type { NextFunction, Request, Response } from 'express';
import type { PolicyEngine, PolicyResult } from '../http/engine.js';
import { pathOf } from '../http/request.js';
import { defaultUser, engineOf, type AdapterOptions } from './common.js';
import { applyResult, completeOnResponse, nodeRequestInfo } from './node-http.js';

/** Options of the Express middleware. */
export type ExpressRateLimitOptions = AdapterOptions<Request>;

/** Express middleware with its engine attached. */
export interface ExpressRateLimiter {
  (req: Request, res: Response, next: NextFunction): void;
  readonly engine: PolicyEngine;
}

/** Create Express middleware. Options are validated now. */
export function rateLimit(options: ExpressRateLimitOptions): ExpressRateLimiter {
  const engine = engineOf(options);
  const getUser = (options.getUser ?? defaultUser) as (req: unknown) => ReturnType<typeof defaultUser>;
  const getApiKey = options.getApiKey as ((req: unknown) => string | undefined) | undefined;
  const needsCompletion = engine.needsCompletion;
  const finish = (result: PolicyResult, res: Response, next: NextFunction) => {
    if (needsCompletion && result.action === 'allow') completeOnResponse(result, res);
    if (applyResult(result, res)) next();
  };
  const middleware = (req: Request, res: Response, next: NextFunction): void => {
    let r: PolicyResult | Promise<PolicyResult>;
    try {
      // originalUrl: the full path even when mounted under a prefix (the problem `instance`).
      r = engine.evaluate(nodeRequestInfo(req, getUser, getApiKey, pathOf(req.originalUrl ?? req.url)));
    } catch (err) {
      return next(err);
    }
    // A closure only when the engine had to wait (a synchronous decision needs none).
    if (r instanceof Promise) r.then((x) => finish(x, res, next), next);
    else finish(r, res, next);
  };
  return Object.assign(middleware, { engine });
}
