/**
 * The part of a running gateway that a config reload replaces as one unit: routes, their policy
 * engines, upstream pools and the authenticator. Built completely (every check done) before it is
 * swapped in, so a broken config never replaces a working one. The store, the consumer registry
 * and the servers outlive reloads.
 */
import type { Store } from '../core/store.js';
import { compileTrustProxy, type TrustRule } from '../http/client-ip.js';
import type { PolicyEngine, PolicyEngineOptions } from '../http/engine.js';
import { createAuthenticator, type Authenticator } from './auth.js';
import type { GatewayConfig, RouteConfig, UpstreamConfig } from './config.js';
import { MemoryStore } from '../stores/memory-store.js';
import { ConsumerRegistry } from './consumers.js';
import { compilePolicies, type CompiledPolicies } from './policies.js';
import { Upstream } from './proxy.js';
import { compilePattern, type PathMatcher } from './routes.js';

/** A route ready to serve. */
export interface CompiledRoute {
  readonly name: string;
  readonly config: RouteConfig;
  readonly match: PathMatcher;
  readonly methods: ReadonlySet<string> | undefined;
  /** Where to proxy; undefined for a decision-only route (answered by the forward-auth listener). */
  readonly upstream: Upstream | undefined;
  readonly engine: PolicyEngine | undefined;
  readonly auth: 'required' | 'optional' | 'none';
  /** 401 without an authenticated consumer (auth required, or a per-consumer policy with onUnidentified: deny). */
  readonly requireUser: boolean;
  /** Prefix removed from the matched path before forwarding (undefined: none). */
  readonly stripPrefix: string | undefined;
}

/** Everything a request reads. */
export interface GatewayState {
  readonly config: GatewayConfig;
  readonly routes: readonly CompiledRoute[];
  readonly upstreams: ReadonlyMap<string, Upstream>;
  readonly authenticate: Authenticator;
  readonly policies: CompiledPolicies;
  readonly buildId: string;
  /** `server.trustProxy`, compiled: which forwarded hops the gateway believes. */
  readonly trust: TrustRule;
}

/**
 * Build a state. Pure with respect to the running gateway: it reads the registry but changes
 * nothing shared, so a config it refuses (it throws SluiceConfigError) leaves the old state, the
 * consumers and their keys exactly as they were. `reuse` lends the previous state's pools for upstreams whose settings did not change. */
export function buildState(
  config: GatewayConfig,
  shared: { store: Store; registry: ConsumerRegistry; buildId: string; engine?: Omit<PolicyEngineOptions, 'policies' | 'store' | 'buildId'> },
  reuse?: GatewayState,
): GatewayState {
  const trust = compileTrustProxy(config.server.trustProxy, 'server.trustProxy');
  const policies = compilePolicies(config, shared.registry, { ...(shared.engine ?? {}), store: shared.store, buildId: shared.buildId });
  const authenticate = createAuthenticator(config.auth, shared.registry);
  const upstreams = new Map<string, Upstream>();
  const same = (a: UpstreamConfig, b: UpstreamConfig) => JSON.stringify(a) === JSON.stringify(b);
  for (const [name, u] of Object.entries(config.upstreams)) {
    const old = reuse?.upstreams.get(name);
    upstreams.set(name, old !== undefined && same(old.config, u) ? old : new Upstream(name, u));
  }
  const routes = config.routes.map((r, i): CompiledRoute => ({
    name: r.name ?? r.path,
    config: r,
    match: compilePattern(r.path, { caseSensitive: config.server.caseSensitivePaths }),
    methods: r.methods === undefined ? undefined : new Set(r.methods),
    upstream: r.upstream === undefined ? undefined : upstreams.get(r.upstream),
    engine: policies.engines[i],
    auth: r.auth,
    requireUser: r.auth !== 'none' && (policies.requireUser[i] ?? false),
    stripPrefix: r.stripPrefix === undefined || r.stripPrefix === '/' ? undefined : r.stripPrefix,
  }));
  return { config, routes, upstreams, authenticate, policies, buildId: shared.buildId, trust };
}

/**
 * Compile everything `sluice serve` compiles from a config (`sluice check`), on a throwaway memory
 * store and registry, and release what it built. Throws the first SluiceConfigError.
 */
export async function compileConfig(config: GatewayConfig): Promise<GatewayState> {
  const registry = new ConsumerRegistry({ type: 'memory' });
  registry.setStatic(config.consumers);
  const store = new MemoryStore();
  const st = buildState(config, { store, registry, buildId: 'check', engine: { logger: false } });
  await Promise.all([...st.upstreams.values()].map((u) => u.close().catch(() => {})));
  await store.close();
  return st;
}

/**
 * The first route (config order) for a method and a request path's decoded segments. The proxy
 * listener passes `proxiedOnly`: decision-only routes (no upstream) are answered by the
 * forward-auth listener, never proxied.
 */
export function findRoute(state: GatewayState, method: string, segments: readonly string[], proxiedOnly: boolean): CompiledRoute | undefined {
  for (const r of state.routes) {
    if (proxiedOnly && r.upstream === undefined) continue;
    if (r.methods !== undefined && !r.methods.has(method)) continue;
    if (r.match(segments)) return r;
  }
  return undefined;
}
