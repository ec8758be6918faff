/**
 * `sluice/http`: rate-limit policies for plain `node:http`, and the framework-neutral policy
 * engine every adapter (and the gateway) is built on.
 */
export { rateLimit, withRateLimit, nodeRequestInfo, applyResult, type NodeRateLimiter, type NodeRateLimitOptions } from './adapters/node-http.js';
export type { AdapterOptions, EngineSettings } from './adapters/common.js';
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
export {
  compilePolicy,
  type CompiledPolicy,
  type FailedAuthOptions,
  type HeaderMode,
  type IdentifierFunction,
  type IdentifierResult,
  type OnUnidentified,
  type RateLimitBy,
  type RateLimitPolicyOptions,
  type RequestMatcher,
} from './http/options.js';
export type { HttpRequestInfo, HttpUser } from './http/request.js';
export { clientIp, ipBucket, normalizeIp, compileTrustProxy, type TrustProxy, type ForwardedHeader } from './http/client-ip.js';
export { problem, problemBody, requestIdOf, PROBLEM_CONTENT_TYPE, type Problem, type ProblemTrace } from './http/problem.js';
export { writeRateLimitHeaders, retryAfterSeconds, sfString, type HeaderInput } from './http/headers.js';
