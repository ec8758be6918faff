/**
 * The running gateway: the public HTTP server (route → authenticate → policy engine → upstream),
 * the admin server, config reload (SIGHUP / file change / admin) and graceful shutdown.
 *
 * Request path, in order: path validation (400), route match (404), authentication, the route's
 * policy engine (the HTTP layer answers 429/503/403 itself), then the upstream (502/504 on
 * failure). Requests whose authentication fails still pass through the policy engine before their
 * 401, so limits and `failedAuth` penalties apply to credential guessing too. Every refusal is
 * problem+json in the shape of the 429.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Cluster, Redis } from 'ioredis';
import { SluiceConfigError } from '../core/errors.js';
import type { Store } from '../core/store.js';
import { clientIp, type TrustRule } from '../http/client-ip.js';
import type { PolicyEvent, PolicyResult } from '../http/engine.js';
import { requestIdOf } from '../http/problem.js';
import { headerReader } from '../http/cost.js';
import { pathOf } from '../http/request.js';
import { eventFromPolicy } from '../observability/from-policy.js';
import { observerFromConfig } from '../observability/config.js';
import type { Observer } from '../observability/observer.js';
import { MemoryStore } from '../stores/memory-store.js';
import { FallbackStore, summarizeHealthEvent, type StoreHealthEvent } from '../stores/fallback-store.js';
import { createRedisConnection, type RedisTarget } from '../stores/redis/connection.js';
import { RedisStore } from '../stores/redis-store.js';
import { createAdminHandler } from './admin.js';
import type { AuthResult } from './auth.js';
import { loadConfig, type GatewayConfig, type StoreConfig } from './config.js';
import { ConsumerRegistry } from './consumers.js';
import type { GatewayRequestInfo } from './policies.js';
import { problemText, sendProblem, strippedTarget } from './proxy.js';
import { splitPath } from './routes.js';
import { buildState, findRoute, type CompiledRoute, type GatewayState } from './state.js';
import { admit, type Admission } from './admission.js';
import { createForwardAuthHandler } from './forward-auth.js';
import { watchConfig } from './reload.js';
import { throttledWarn } from './throttled-log.js';

/** Where the gateway writes its own operational messages. */
export interface GatewayLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** JSON lines on stderr. */
export const stderrLogger: GatewayLogger = {
  info: (msg, f) => process.stderr.write(`${JSON.stringify({ level: 'info', time: new Date().toISOString(), msg, ...f })}\n`),
  warn: (msg, f) => process.stderr.write(`${JSON.stringify({ level: 'warn', time: new Date().toISOString(), msg, ...f })}\n`),
  error: (msg, f) => process.stderr.write(`${JSON.stringify({ level: 'error', time: new Date().toISOString(), msg, ...f })}\n`),
};

/** Options of {@link startGateway}. */
export interface GatewayOptions {
  /** A parsed config, or... */
  config?: GatewayConfig;
  /** ...a file to load (and watch, and reload on SIGHUP when `watch` / `signals`). */
  configFile?: string;
  /** Environment for `${VAR}` interpolation. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  logger?: GatewayLogger;
  /** Reload when the config file changes. Default false (the CLI turns it on). */
  watch?: boolean;
  /** Handle SIGHUP (reload) and SIGTERM/SIGINT (graceful shutdown, then exit). Default false. */
  signals?: boolean;
  /** Override the listen ports (tests: 0). */
  port?: number;
  adminPort?: number;
  forwardAuthPort?: number;
}

/** A running gateway. */
export interface Gateway {
  /** Base URL of the proxy, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** Base URL of the admin API, when configured. */
  readonly adminUrl: string | undefined;
  /** Base URL of the forward-auth decision listener, when `forwardAuth` is configured. */
  readonly forwardAuthUrl: string | undefined;
  readonly state: GatewayState;
  readonly store: Store;
  readonly registry: ConsumerRegistry;
  readonly observer: Observer | undefined;
  /** Reload the config file (or apply `config`). Resolves false (old config kept, error logged) when it is refused. */
  reload(config?: GatewayConfig): Promise<boolean>;
  /** Stop accepting, finish in-flight requests (up to `server.shutdownTimeoutMs`), release everything. */
  close(): Promise<void>;
}

/** The store a config names (memory, or Redis behind its breaker). */
export function storeOf(config: GatewayConfig, onEvent: (e: StoreHealthEvent) => void): Store {
  const s = config.store;
  if (s === 'memory' || s.type === 'memory') return new MemoryStore(s === 'memory' ? {} : { ...(s.maxKeys !== undefined ? { maxKeys: s.maxKeys } : {}), ...(s.maxBytes !== undefined ? { maxBytes: s.maxBytes } : {}) });
  const redis = new RedisStore({ ...redisTargetOf(s), prefix: s.prefix, timeoutMs: s.timeoutMs });
  // The breaker protects every policy; only those with onStoreError: local decide locally.
  return new FallbackStore({
    store: redis,
    onStoreError: 'error',
    expectedInstances: s.expectedInstances,
    ...(s.localShare !== undefined ? { localShare: s.localShare } : {}),
    breaker: s.breaker,
    onEvent,
  });
}

/** Where the config's Redis is (url, Cluster nodes or Sentinel). */
function redisTargetOf(s: Exclude<StoreConfig, 'memory' | { type: 'memory' }>): RedisTarget {
  return { ...(s.url !== undefined ? { url: s.url } : {}), ...(s.nodes !== undefined ? { nodes: s.nodes } : {}), ...(s.sentinel !== undefined ? { sentinel: s.sentinel } : {}) };
}

const listen = (server: Server, port: number, host: string) =>
  new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });

const hostForUrl = (h: string) => (h.includes(':') ? `[${h}]` : h === '0.0.0.0' ? '127.0.0.1' : h);

/** Start a gateway. Every config error surfaces here (SluiceConfigError), before a port is opened. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const log = options.logger ?? stderrLogger;
  const env = options.env ?? process.env;
  const file = options.configFile;
  const initial = options.config ?? (file !== undefined ? loadConfig(file, env) : undefined);
  if (initial === undefined) throw new SluiceConfigError('config', 'give config or configFile');
  let config: GatewayConfig = initial;
  const buildId = config.server.buildId ?? env.SLUICE_BUILD_ID ?? randomUUID();

  const storeConfigJson = JSON.stringify(config.store);
  let observer: Observer | undefined;
  const store = storeOf(config, (e) => {
    const h = summarizeHealthEvent(e);
    log[h.level](h.msg, h.fields);
    observer?.metrics.storeHealth(h.kind);
  });
  const sc = config.store;
  const registry = new ConsumerRegistry(sc === 'memory' || sc.type === 'memory' ? { type: 'memory' } : { type: 'redis', ...redisTargetOf(sc), prefix: sc.prefix });
  registry.setStatic(config.consumers);
  let analyticsRedis: Redis | Cluster | undefined;
  let state: GatewayState;
  const warnOnce = throttledWarn(log);
  // Store failures by request id, so a request let through under `onStoreError: allow` is still
  // counted as a store error (the engine's result only says "allowed"). Entries live until the
  // request finishes; the cap only matters if requests never finish.
  const storeFailures = new Map<string, string>();
  const onEngineEvent = (e: PolicyEvent) => {
    if (e.type !== 'store-error' && e.type !== 'identifier-error') return;
    const error = e.error instanceof Error ? ((e.error as { code?: string }).code ?? e.error.message) : String(e.error);
    warnOnce(`store:${e.policy}`, e.type === 'store-error' ? 'rate-limit store failed; the policy\'s onStoreError decides' : 'rate-limit identifier failed', { policy: e.policy, error });
    if (observer === undefined) return;
    if (storeFailures.size >= 10_000) storeFailures.clear();
    storeFailures.set(e.requestId, error);
  };
  const engineOptions = { logger: false as const, onEvent: onEngineEvent };
  try {
    await registry.start();
    if (config.observability !== undefined) {
      if (sc !== 'memory' && sc.type === 'redis') {
        // Shared analytics and warning deduplication on every kind of Redis (Cluster and Sentinel too).
        analyticsRedis = createRedisConnection(redisTargetOf(sc), { profile: 'patient' });
        analyticsRedis.on('error', () => {});
      }
      observer = observerFromConfig(config.observability, analyticsRedis ? { redis: analyticsRedis, prefix: sc === 'memory' || sc.type !== 'redis' ? undefined : sc.prefix } : {});
    }
    state = buildState(config, { store, registry, buildId, engine: engineOptions });
  } catch (err) {
    await registry.close();
    await store.close().catch(() => {});
    analyticsRedis?.disconnect();
    await observer?.close().catch(() => {});
    throw err;
  }

  let closing = false;
  let inFlight = 0;
  let serverTrust: TrustRule = state.trust;

  // ---------------- the proxy handler ----------------
  /** One request event for the observer (proxied or decided for a proxy). */
  const observe = (route: CompiledRoute, info: GatewayRequestInfo, result: PolicyResult | undefined, status: number, t0: number, refused: boolean, ip: string) => {
    if (observer === undefined) return;
    let storeError: string | undefined;
    if (result !== undefined && storeFailures.size > 0) {
      storeError = storeFailures.get(result.requestId);
      storeFailures.delete(result.requestId);
    }
    observer.record(
      eventFromPolicy({
        route: route.name,
        request: info,
        ...(result ? { result } : {}),
        status,
        time: t0,
        durationMs: Date.now() - t0,
        ip,
        ...(info.policyMs !== undefined ? { storeLatencyMs: info.policyMs } : {}),
        ...(refused ? { refused } : {}),
        ...(storeError !== undefined ? { storeError } : {}),
      }),
    );
  };
  const finish = (route: CompiledRoute, info: GatewayRequestInfo, result: PolicyResult | undefined, status: number, t0: number, refused = false, upstreamHeaders?: Record<string, string | string[] | undefined>) => {
    inFlight--;
    // The upstream's headers only when some policy reads its cost from them (no reader otherwise).
    if (upstreamHeaders !== undefined && route.engine?.needsCompletion === true) result?.complete(status, headerReader(upstreamHeaders));
    else result?.complete(status);
    // The client as the server's trustProxy believes it (the socket address otherwise).
    if (observer !== undefined) observe(route, info, result, status, t0, refused, clientIp(info, serverTrust) ?? info.remoteAddress);
  };

  const forward = (req: IncomingMessage, res: ServerResponse, route: CompiledRoute, info: GatewayRequestInfo, result: PolicyResult | undefined, requestId: string, t0: number) => {
    if (result !== undefined && result.action === 'deny') {
      res.writeHead(result.status, result.headers);
      res.end(result.body);
      finish(route, info, result, result.status, t0);
      return;
    }
    const url = info.url as string;
    const target = info.target ?? url;
    const remote = info.remoteAddress;
    let forwardedFor = remote;
    if (!('hops' in serverTrust && serverTrust.hops === 0)) {
      const prior = req.headers['x-forwarded-for'];
      const believed = clientIp(info, serverTrust);
      if (typeof prior === 'string' && believed !== undefined && believed !== remote) forwardedFor = `${prior}, ${remote}`;
    }
    if (closing) res.setHeader('connection', 'close');
    (route.upstream as NonNullable<CompiledRoute['upstream']>).forward(req, res, {
      target: target.charCodeAt(0) === 47 ? target : `/${target}`,
      requestId,
      forwardedFor,
      ...(info.user ? { consumer: info.user } : {}),
      responseHeaders: result?.headers ?? { 'x-request-id': requestId },
      path: info.path,
      buildId,
      dropUnderscoreHeaders: config.server.dropUnderscoreHeaders,
      done: (status, upstreamHeaders) => finish(route, info, result, status, t0, false, upstreamHeaders),
    });
  };

  /** 401 for a request the engine let through (or that no policy covers); its rate-limit headers kept. */
  const unauthorized = (req: IncomingMessage, res: ServerResponse, route: CompiledRoute, info: GatewayRequestInfo, reason: string, result: PolicyResult | undefined, t0: number) => {
    const requestId = result?.requestId ?? requestIdOf(req.headers['x-request-id']);
    sendProblem(res, 401, reason, info.path, requestId, buildId, { ...result?.headers, 'www-authenticate': 'Bearer realm="sluice"' });
    // complete(401) inside finish is what failedAuth policies count.
    finish(route, info, result, 401, t0, true);
  };

  const afterAuth = (req: IncomingMessage, res: ServerResponse, route: CompiledRoute, info: GatewayRequestInfo, a: AuthResult, t0: number) => {
    const answer = (x: Admission) => {
      if (observer !== undefined && route.engine !== undefined) info.policyMs = performance.now() - p0;
      if (x.kind === 'unavailable') {
        // The gateway cannot check credentials (JWKS down): its own failure, so 503, not 401.
        warnOnce(`auth:${route.name}`, 'cannot check credentials', { route: route.name, error: x.reason });
        sendProblem(res, 503, 'credentials cannot be checked right now; retry later', info.path, requestIdOf(req.headers['x-request-id']), buildId, { 'retry-after': '5' });
        finish(route, info, undefined, 503, t0, true);
      } else if (x.kind === 'unauthorized') unauthorized(req, res, route, info, x.detail, x.result, t0);
      else forward(req, res, route, info, x.result, x.result?.requestId ?? requestIdOf(req.headers['x-request-id']), t0);
    };
    const p0 = observer === undefined ? 0 : performance.now();
    const x = admit(route, info, a);
    if (x instanceof Promise) x.then(answer, (err: unknown) => fail(res, info.path, err, () => finish(route, info, undefined, 500, t0)));
    else answer(x);
  };

  const fail = (res: ServerResponse, path: string, err: unknown, done: () => void) => {
    log.error('request failed', { error: String(err) });
    sendProblem(res, 500, 'internal error', path, randomUUID(), buildId);
    done();
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const st = state;
    const t0 = observer !== undefined ? Date.now() : 0;
    const url = req.url ?? '/';
    const path = pathOf(url);
    const segs = splitPath(path);
    if (typeof segs === 'string') {
      sendProblem(res, 400, `invalid request path (${segs})`, path.slice(0, 200), requestIdOf(req.headers['x-request-id']), buildId);
      return;
    }
    const method = req.method ?? 'GET';
    const route = findRoute(st, method, segs, true);
    if (route === undefined) {
      sendProblem(res, 404, `no route for ${method} ${path.slice(0, 200)}`, path.slice(0, 200), requestIdOf(req.headers['x-request-id']), buildId);
      return;
    }
    inFlight++;
    const info: GatewayRequestInfo = { method, path, url, headers: req.headers, remoteAddress: req.socket.remoteAddress ?? '' };
    if (route.stripPrefix !== undefined) info.target = strippedTarget(segs, route.stripPrefix, url);
    try {
      if (route.auth === 'none') {
        afterAuth(req, res, route, info, { kind: 'anonymous' }, t0);
        return;
      }
      const a = st.authenticate(req.headers);
      const rt = route;
      if (a instanceof Promise) {
        a.then(
          (x) => afterAuth(req, res, rt, info, x, t0),
          (err: unknown) => fail(res, path, err, () => finish(rt, info, undefined, 500, t0)),
        );
      } else afterAuth(req, res, route, info, a, t0);
    } catch (err) {
      const rt = route;
      fail(res, path, err, () => finish(rt, info, undefined, 500, t0));
    }
  };

  const sv = config.server;
  const server = createServer(
    { maxHeaderSize: sv.maxHeaderSize, requestTimeout: sv.requestTimeoutMs, headersTimeout: sv.headersTimeoutMs, keepAliveTimeout: sv.keepAliveTimeoutMs, noDelay: true,
      // How often Node checks header/request timeouts (default 30 s would let a slow client outlive its timeout by that much).
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(sv.headersTimeoutMs / 2))) },
    handler,
  );
  // Malformed requests: answer what went wrong (431 for oversized headers, 408 for a timeout, else 400) and close.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || (err as { code?: string }).code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const code = err.code ?? '';
    const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const detail = status === 431 ? `request headers exceed ${sv.maxHeaderSize} bytes` : status === 408 ? 'the request was not received in time' : 'malformed HTTP request';
    const body = problemText(status, detail, '/', randomUUID(), buildId);
    socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });

  // ---------------- reload ----------------
  let reloading: Promise<boolean> = Promise.resolve(true);
  const applyConfig = async (next: GatewayConfig): Promise<boolean> => {
    if (JSON.stringify(next.store) !== storeConfigJson) throw new SluiceConfigError('store', 'changing the store needs a restart');
    const old = state;
    // Everything is compiled (routes, policies, trustProxy, auth) before any shared state changes:
    // a refused config must not have granted or revoked a single key.
    const built = buildState(next, { store, registry, buildId, engine: engineOptions }, old);
    registry.setStatic(next.consumers);
    serverTrust = built.trust;
    server.headersTimeout = next.server.headersTimeoutMs;
    server.requestTimeout = next.server.requestTimeoutMs;
    server.keepAliveTimeout = next.server.keepAliveTimeoutMs;
    for (const k of ['host', 'port', 'maxHeaderSize'] as const) {
      if (next.server[k] !== config.server[k]) log.warn(`server.${k} changed: takes effect after a restart`);
    }
    if (JSON.stringify(next.admin ? { h: next.admin.host, p: next.admin.port } : null) !== JSON.stringify(config.admin ? { h: config.admin.host, p: config.admin.port } : null)) {
      log.warn('admin host/port changed: takes effect after a restart');
    }
    state = built;
    config = next;
    adminToken.value = next.admin?.token ?? adminToken.value;
    // Pools no longer used finish their in-flight requests, then close.
    for (const [name, u] of old.upstreams) if (built.upstreams.get(name) !== u) void u.close().catch(() => {});
    log.info('config reloaded', { routes: built.routes.length, policies: Object.keys(next.policies).length });
    return true;
  };
  const reload = (next?: GatewayConfig): Promise<boolean> => {
    reloading = reloading.then(async () => {
      try {
        const c = next ?? (file !== undefined ? loadConfig(file, env) : undefined);
        if (c === undefined) return false;
        return await applyConfig(c);
      } catch (err) {
        const e = err as Error;
        log.error('config reload refused; keeping the running config', { error: e.message, ...(err instanceof SluiceConfigError ? { field: err.field } : {}) });
        return false;
      }
    });
    return reloading;
  };

  // ---------------- admin ----------------
  const adminToken = { value: config.admin?.token ?? '' };
  let admin: Server | undefined;
  const port = await listen(server, options.port ?? sv.port, sv.host);
  let adminPort: number | undefined;
  if (config.admin !== undefined) {
    const handle = createAdminHandler({ token: () => adminToken.value, registry, store, state: () => state, observer, reload: () => reload() });
    admin = createServer({ maxHeaderSize: 16_384, requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => void handle(req, res));
    try {
      adminPort = await listen(admin, options.adminPort ?? config.admin.port, config.admin.host);
    } catch (err) {
      server.close();
      await registry.close();
      await store.close().catch(() => {});
      throw err;
    }
  }

  // ---------------- forward-auth decisions ----------------
  let decisions: Server | undefined;
  let decisionsPort: number | undefined;
  if (config.forwardAuth !== undefined) {
    if ('hops' in serverTrust && serverTrust.hops === 0) {
      log.warn('forwardAuth without server.trustProxy: the proxy is every request\'s client address, so IP-keyed policies share one bucket; list the proxy in server.trustProxy');
    }
    const handle = createForwardAuthHandler({
      state: () => state,
      trust: () => serverTrust,
      buildId,
      onError: (err) => log.error('forward-auth decision failed', { error: String(err) }),
      warnOnce,
      // A 401/503 the policies did not refuse is the gateway's own refusal: counted as denied.
      record: (route, info, result, status, ip, t0) => observe(route, info, result, status, t0, status >= 400 && result?.action !== 'deny', ip),
    });
    decisions = createServer({ maxHeaderSize: sv.maxHeaderSize, requestTimeout: sv.requestTimeoutMs, headersTimeout: sv.headersTimeoutMs, keepAliveTimeout: sv.keepAliveTimeoutMs, noDelay: true }, handle);
    try {
      decisionsPort = await listen(decisions, options.forwardAuthPort ?? config.forwardAuth.port, config.forwardAuth.host);
    } catch (err) {
      server.close();
      admin?.close();
      await registry.close();
      await store.close().catch(() => {});
      throw err;
    }
  }

  const stopWatching = file !== undefined && options.watch ? watchConfig(file, () => void reload(), log) : undefined;

  // ---------------- shutdown ----------------
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      stopWatching?.();
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      admin?.close();
      admin?.closeIdleConnections();
      decisions?.close();
      decisions?.closeIdleConnections();
      // Keep-alive connections that finish a response are closed rather than kept for the next one.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, config.server.shutdownTimeoutMs).unref());
      server.closeIdleConnections();
      await Promise.race([drained, deadline]);
      clearInterval(sweep);
      if (inFlight > 0) log.warn('shutdown timeout: closing connections with requests in flight', { inFlight });
      server.closeAllConnections();
      admin?.closeAllConnections();
      decisions?.closeAllConnections();
      await Promise.all([...state.upstreams.values()].map((u) => u.close().catch(() => {})));
      await observer?.close().catch(() => {});
      await registry.close();
      await store.close().catch(() => {});
      analyticsRedis?.disconnect();
    })();
    return closed;
  };

  if (options.signals) {
    process.on('SIGHUP', () => {
      log.info('SIGHUP: reloading config');
      void reload();
    });
    const stop = (sig: string) => {
      log.info(`${sig}: finishing in-flight requests, then exiting`);
      void close().then(() => process.exit(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  }

  const base = `http://${hostForUrl(sv.host)}:${port}`;
  return {
    url: base,
    adminUrl: adminPort === undefined ? undefined : `http://${hostForUrl(config.admin?.host ?? '127.0.0.1')}:${adminPort}`,
    forwardAuthUrl: decisionsPort === undefined ? undefined : `http://${hostForUrl(config.forwardAuth?.host ?? '127.0.0.1')}:${decisionsPort}`,
    get state() {
      return state;
    },
    store,
    registry,
    observer,
    reload,
    close,
  };
}

