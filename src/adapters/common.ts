/**
 * What every adapter shares: options (one policy's options at the top level, or `policies`), the
 * engine they build, and the user lookup. Adapters only translate requests and responses; every
 * decision is the engine's.
 */
import { SluiceConfigError } from '../core/errors.js';
import { createPolicyEngine, type PolicyEngine, type PolicyEngineOptions } from '../http/engine.js';
import type { RateLimitPolicyOptions } from '../http/options.js';
import type { HttpUser } from '../http/request.js';

/** Engine options minus the policies. */
export type EngineSettings = Omit<PolicyEngineOptions, 'policies'>;

/**
 * Adapter options: either one policy's options at the top level (named `name`, default
 * `"rate-limit"`), or `policies` for several; plus the engine settings (store, buildId, logger...),
 * or a ready `engine` to share one between routes. `Req` is the framework's request type.
 */
export type AdapterOptions<Req> = (
  | (RateLimitPolicyOptions & EngineSettings & { policies?: undefined; engine?: undefined })
  | (EngineSettings & { policies: PolicyEngineOptions['policies']; engine?: undefined })
  | { engine: PolicyEngine; policies?: undefined }
) & {
  /** The authenticated caller of a request (default: a `user` property with a string `sub`, as set by Passport-style auth). */
  getUser?: (req: Req) => HttpUser | undefined;
  /** The API key of a request, when an auth step extracted it (default: none; `apiKeyHeader` is read instead). */
  getApiKey?: (req: Req) => string | undefined;
};

const ENGINE_KEYS = ['store', 'buildId', 'clock', 'logger', 'onEvent'] as const;
const ADAPTER_KEYS = ['getUser', 'getApiKey', 'getRemoteAddress'];

/** Build (or take) the engine of adapter options. Validates everything now, not at the first request. */
export function engineOf<Req>(options: AdapterOptions<Req>): PolicyEngine {
  if (options === null || typeof options !== 'object') throw new SluiceConfigError('options', 'must be an object');
  if (options.engine !== undefined) return options.engine;
  const settings: Record<string, unknown> = {};
  const policy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    // With `policies`, a top-level `cost` is the route's (the engine's), as in the gateway YAML.
    if ((ENGINE_KEYS as readonly string[]).includes(k) || (k === 'cost' && options.policies !== undefined)) settings[k] = v;
    else if (!ADAPTER_KEYS.includes(k) && k !== 'policies') policy[k] = v;
  }
  for (const k of ADAPTER_KEYS) {
    const v = (options as Record<string, unknown>)[k];
    if (v !== undefined && typeof v !== 'function') throw new SluiceConfigError(k, 'must be a function');
  }
  if (options.policies !== undefined) {
    const stray = Object.keys(policy);
    if (stray.length > 0) throw new SluiceConfigError(stray[0] as string, 'put policy options inside "policies" when "policies" is given');
    return createPolicyEngine({ ...(settings as EngineSettings), policies: options.policies });
  }
  const name = (policy.name as string | undefined) ?? 'rate-limit';
  return createPolicyEngine({ ...(settings as EngineSettings), policies: [{ ...(policy as RateLimitPolicyOptions), name }] });
}

/** Default user lookup: `req.user` when it looks like `{ sub: string }`. */
export function defaultUser(req: unknown): HttpUser | undefined {
  const u = (req as { user?: unknown }).user;
  return u !== null && typeof u === 'object' && typeof (u as HttpUser).sub === 'string' ? (u as HttpUser) : undefined;
}
