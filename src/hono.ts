/** `sluice/hono`: Hono middleware (same options and behaviour as every Sluice adapter). */
export { rateLimiter, type HonoRateLimiter, type HonoRateLimitOptions } from './adapters/hono.js';
export type { RateLimitPolicyOptions, HttpRequestInfo, PolicyEngine, PolicyResult } from './http.js';
