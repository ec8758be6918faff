/**
 * `sluice/http`: rate-limit policies for plain `node:http`, and the framework-neutral policy
 * engine every adapter (and the gateway) is built on. Every name is listed in docs/api.md.
 */
export { rateLimit, withRateLimit, type NodeRateLimiter, type NodeRateLimitOptions } from './adapters/node-http.js';
export type { AdapterOptions } from './adapters/common.js';
export {
  createPolicyEngine,
  type PolicyEngine,
  type PolicyEngineOptions,
  type PolicyEvent,
  type PolicyLogger,
  type PolicyReason,
  type PolicyResult,
  type PolicyStats,
} from './http/engine.js';
export type {
  FailedAuthOptions,
  HeaderMode,
  IdentifierFunction,
  IdentifierResult,
  OnUnidentified,
  RateLimitBy,
  RateLimitPolicyOptions,
  RequestMatcher,
} from './http/options.js';
export type { HttpRequestInfo, HttpUser } from './http/request.js';
export type {
  CostFromHeader,
  CostFromQuery,
  CostFromResponse,
  CostFromResponseHeader,
  CostFunction,
  CostOption,
  HttpResponseInfo,
  ResponseCostLimits,
} from './http/cost.js';
export type { ForwardedHeader, TrustProxy } from './http/client-ip.js';
export type { Problem, ProblemTrace } from './http/problem.js';
