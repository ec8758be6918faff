/** `sluice/express`: Express middleware (same options and behaviour as every Sluice adapter). */
export { rateLimit, type ExpressRateLimiter, type ExpressRateLimitOptions } from './adapters/express.js';
export type { RateLimitPolicyOptions, HttpRequestInfo, PolicyEngine, PolicyResult } from './http.js';
