/** `sluice/fastify`: a Fastify plugin (same options and behaviour as every Sluice adapter). */
export { sluiceRateLimit, sluiceRateLimit as default, rateLimitHook, rateLimitHooks, type FastifyRateLimitOptions } from './adapters/fastify.js';
export type { RateLimitPolicyOptions, HttpRequestInfo, PolicyEngine, PolicyResult } from './http.js';
