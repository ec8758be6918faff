/**
 * `createClient`: a fetch-compatible client that paces calls under an API's rate limits, learns the
 * limits from response headers, pauses a whole group on 429, retries what is safe to retry within a
 * budget and a deadline, and never loops on failed authentication.
 */
import { SluiceConfigError } from '../core/errors.js';
import type { Store } from '../core/store.js';
import { MemoryStore } from '../stores/memory-store.js';
import { checkOAuth, TokenManager, type OAuthOptions } from './auth.js';
import {
  ClientClosedError,
  DeadlineExceededError,
  QueueFullError,
  RequestAbortedError,
  RetryBudgetExceededError,
} from './errors.js';
import { MAX_CHECKED_COST, SharedPauses } from './shared-pause.js';
import { ClientEmitter, type ClientEventName, type ClientEvents } from './events.js';
import { parseRateLimitHeaders, type HeaderWarning } from './headers.js';
import { backoffMs, isIdempotent, RetryBudget, retryPolicyOf, type RetryOptions } from './retry.js';
import { compileRoutes, endpointKey, routeGroup, type RouteGroup } from './routes.js';
import { Scheduler, type GroupLimit, type Lane } from './scheduler.js';

/** Anything with pino's `warn(obj, msg)` shape. */
export interface ClientLogger {
  warn(obj: object, msg?: string): void;
}

/** Options of {@link createClient}. Invalid options throw `SluiceConfigError` naming the field. */
export interface ClientOptions {
  /** Base URL relative request URLs resolve against, e.g. `https://platform.ringcentral.com`. */
  baseUrl?: string;
  /** The fetch to send with. Default: global fetch (undici). */
  fetch?: typeof globalThis.fetch;
  /** Requests in flight at once (token requests not counted). Default 16. */
  concurrency?: number;
  /**
   * Budgets per group, e.g. RingCentral's `{ light: { limit: 50, windowMs: 60_000 }, medium: {...},
   * heavy: {...} }`. Group names are case-insensitive. Groups without a budget learn one from headers.
   */
  groups?: Record<string, GroupLimit>;
  /** Endpoint → group map. Unmatched endpoints use what the server said, else `defaultGroup`. */
  routes?: readonly RouteGroup[];
  /** Group of requests no route or header places. Default `default`. */
  defaultGroup?: string;
  /** Where budgets live. Default a MemoryStore; a RedisStore shares them between processes. */
  store?: Store;
  /** Prefix of budget keys in the store. Default `sluice-client:`. */
  keyPrefix?: string;
  /**
   * Safety margin added to every window (absorbs latency jitter). Default max(20 ms, 1 % of the
   * window); with a `store` passed in (shared between processes) max(100 ms, 2 % of the window).
   */
  marginMs?: number;
  /** Share of a window's budget that may go back to back; the rest is spread. Default 0.25. */
  burstRatio?: number;
  /** Fail (RateLimitWaitTooLongError) instead of waiting longer than this for a pause or budget. Default 120 000. */
  maxWaitMs?: number;
  /**
   * First pause after a 429 that says nothing about the wait (no `Retry-After`, reset or window).
   * Repeated 429s double it, with jitter (each pause is 50-100 % of the doubled value), up to
   * `maxBackoffMs`. Default 1000.
   */
  defaultRetryAfterMs?: number;
  /** Longest pause of that backoff. Default 60 000. */
  maxBackoffMs?: number;
  /** Calls the client holds at once (queued, in flight or waiting to retry); more fail with QueueFullError. Default 100 000. */
  maxQueued?: number;
  /** Rate-limit groups learned from response headers, at most (more are paced in `defaultGroup`). Default 1000. */
  maxLearnedGroups?: number;
  /** Lanes idle this long are dropped with what they learned. Default 600 000 (10 min). */
  idleLaneMs?: number;
  /** Shortest pause after a 429 (for `Retry-After: 0` or past dates). Default 1000. */
  minPauseMs?: number;
  /** Times one call is re-sent after 429s before the 429 is returned. Default 3. */
  rateLimitRetries?: number;
  /**
   * Deadline of one call, queueing and retries included, until the response headers arrive (like
   * ky's `timeout`; reading the body is bounded by the caller's `signal`). Default 300 000.
   */
  timeoutMs?: number;
  /** Retries of 5xx and network errors. */
  retry?: RetryOptions;
  /** OAuth token endpoint; the client adds `Authorization: Bearer`. */
  auth?: OAuthOptions;
  /** Credential id when `auth` is not used (keys the budgets). Default `default`. */
  credential?: string;
  /** Receives warnings about hostile headers (pino-compatible). */
  logger?: ClientLogger;
}

/** `fetch` init plus scheduling options. */
export interface ClientRequestInit extends Omit<RequestInit, 'priority'> {
  /** Rate-limit group of this call (overrides routes and learned groups). */
  group?: string;
  /** Higher goes first within a group. Default 0. */
  priority?: number;
  /** Deadline of this call in ms. */
  timeoutMs?: number;
  /** Longest acceptable wait for a pause or an exhausted budget. */
  maxWaitMs?: number;
  /** Mark a non-idempotent call as safe to retry (e.g. it carries an idempotency key). */
  idempotent?: boolean;
  /** Budget units this call costs (Bottleneck's `weight`). A positive integer, at most the group's limit. Default 1. */
  cost?: number;
  /**
   * Credential (user, API key) this call is made for: its own lanes and budgets, for apps acting for
   * many users. Set the call's own `Authorization` header. Not with the client's `auth`. Default: the
   * client's `credential`.
   */
  credential?: string;
}

/** The client. */
export interface Client {
  /** Send a request through the scheduler. Resolves with the final Response (fetch semantics). */
  fetch(input: string | URL | Request, init?: ClientRequestInit): Promise<Response>;
  /** Subscribe to progress events; returns an unsubscribe function. */
  on<K extends ClientEventName>(name: K, fn: (e: ClientEvents[K]) => void): () => void;
  /** New credentials: closes the breaker and forgets tokens. */
  setAuth(auth: OAuthOptions): void;
  /** Token requests sent so far (for the current credentials). */
  readonly tokenRequests: number;
  /** Budgets and state per lane, for inspection. */
  lanes(): {
    group: string;
    credential: string;
    limit?: GroupLimit;
    source: string;
    pausedUntil: number;
    queued: number;
    inFlight: number;
    /** Send rate (per second) learned from bare 429s, when the lane paces by it. */
    adaptiveRate?: number;
  }[];
  /** Reject queued calls and stop timers. Does not close a store that was passed in. */
  close(): Promise<void>;
}

function positive(v: unknown, field: string, dflt: number, { integer = false, min = 0 } = {}): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || Number.isNaN(v) || v < min || (integer && !Number.isInteger(v))) {
    throw new SluiceConfigError(field, `must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${String(v)}`);
  }
  return v;
}

function checkLimit(g: unknown, field: string): GroupLimit {
  const l = g as GroupLimit;
  if (l === null || typeof l !== 'object') throw new SluiceConfigError(field, 'must be { limit, windowMs }');
  positive(l.limit, `${field}.limit`, 0, { integer: true, min: 1 });
  positive(l.windowMs, `${field}.windowMs`, 0, { min: 1 });
  if (!Number.isFinite(l.windowMs)) throw new SluiceConfigError(`${field}.windowMs`, 'must be finite');
  return { limit: l.limit, windowMs: l.windowMs };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    /* already consumed */
  }
}

/** Create a client. Options are validated now (errors name the option). */
export function createClient(options: ClientOptions = {}): Client {
  const o = options;
  if (o.baseUrl !== undefined) {
    try {
      new URL(o.baseUrl);
    } catch {
      throw new SluiceConfigError('baseUrl', `must be an absolute URL, got ${JSON.stringify(o.baseUrl)}`);
    }
  }
  const fetchImpl = o.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function') throw new SluiceConfigError('fetch', 'must be a fetch function');
  const concurrency = positive(o.concurrency, 'concurrency', 16, { integer: true, min: 1 });
  const maxWaitMs = positive(o.maxWaitMs, 'maxWaitMs', 120_000);
  const timeoutMs = positive(o.timeoutMs, 'timeoutMs', 300_000, { min: 1 });
  const rateLimitRetries = positive(o.rateLimitRetries, 'rateLimitRetries', 3, { integer: true });
  const burstRatio = positive(o.burstRatio, 'burstRatio', 0.25);
  if (burstRatio > 1) throw new SluiceConfigError('burstRatio', `must be in [0, 1], got ${burstRatio}`);
  const marginOpt = o.marginMs === undefined ? undefined : positive(o.marginMs, 'marginMs', 0);
  const defaultRetryAfterMs = positive(o.defaultRetryAfterMs, 'defaultRetryAfterMs', 1000);
  const maxBackoffMs = positive(o.maxBackoffMs, 'maxBackoffMs', 60_000);
  const maxQueued = positive(o.maxQueued, 'maxQueued', 100_000, { integer: true, min: 1 });
  const maxLearnedGroups = positive(o.maxLearnedGroups, 'maxLearnedGroups', 1000, { integer: true });
  const idleLaneMs = positive(o.idleLaneMs, 'idleLaneMs', 600_000);
  if (o.credential !== undefined && (typeof o.credential !== 'string' || o.credential.length === 0)) {
    throw new SluiceConfigError('credential', 'must be a non-empty string');
  }
  const minPauseMs = positive(o.minPauseMs, 'minPauseMs', 1000);
  const retry = retryPolicyOf(o.retry);
  const routes = compileRoutes(o.routes);
  const defaultGroup = (o.defaultGroup ?? 'default').toLowerCase();
  const groups = new Map<string, GroupLimit>();
  for (const [name, g] of Object.entries(o.groups ?? {})) groups.set(name.toLowerCase(), checkLimit(g, `groups.${name}`));
  if (o.auth !== undefined) checkOAuth(o.auth, o.baseUrl);
  const keyPrefix = o.keyPrefix ?? 'sluice-client:';
  const ownStore = o.store === undefined;
  const store = o.store ?? new MemoryStore();
  // A store passed in may be shared with other processes: 429 pauses and breakers go there too.
  const shared = ownStore ? undefined : new SharedPauses(store);

  const emitter = new ClientEmitter();
  const budget = new RetryBudget(retry.budgetRatio, retry.budgetMinPerSecond);
  const scheduler = new Scheduler({
    concurrency,
    store,
    keyPrefix,
    // Across processes a request's log entry (taken at dispatch) and its arrival at the server are
    // further apart (store round trip, another event loop): the default margin is wider there.
    marginMs: (w) => marginOpt ?? (shared === undefined ? Math.max(20, w * 0.01) : Math.max(100, w * 0.02)),
    // Within one process the completion gate counts each request until its answer + window (exact
    // whatever the latency): the log's own margin only delayed every window by it.
    logMarginMs: (w) => marginOpt ?? (shared === undefined ? 0 : Math.max(100, w * 0.02)),
    defaultGroup,
    burstRatio,
    // A budget the server states for a group it names (or the only group a lane has seen) may go
    // back to back whole, as the server allows: spreading 3 of 4 over the window cost the last
    // window's spread. Lanes that saw two budgets (two unnamed groups) spread them (Lane.mixed);
    // learned lanes keep a unit free for a request of an endpoint not yet placed. Across processes
    // (a shared store) learned budgets are spread like configured ones (a 3-process spec got 2 429s
    // with whole bursts).
    learnedBurstRatio: o.burstRatio === undefined && shared === undefined ? 1 : burstRatio,
    backoffBaseMs: defaultRetryAfterMs,
    backoffCapMs: Math.max(maxBackoffMs, defaultRetryAfterMs),
    minPauseMs,
    shared,
    idleLaneMs,
    onLearned: (lane, limit) => emitter.emit('learned', { group: lane.group, ...limit }),
  });
  const warnFor = (group: string) => (w: HeaderWarning) => {
    emitter.emit('warning', { ...w, group });
    o.logger?.warn({ ...w, group }, `sluice client: ignored or clamped rate-limit header ${w.header}`);
  };
  const learned = new Map<string, string>();
  let auth: TokenManager | undefined;
  const setAuth = (a: OAuthOptions) => {
    checkOAuth(a, o.baseUrl);
    auth = new TokenManager(a, { fetch: fetchImpl, scheduler, emitter, baseUrl: o.baseUrl, maxWaitMs, warn: warnFor('token-endpoint'), shared, keyPrefix });
  };
  if (o.auth !== undefined) setAuth(o.auth);
  const setAuthPublic = (a: OAuthOptions) => {
    setAuth(a);
    auth?.clearSharedBreaker();
  };
  const credentialOf = (perCall: string | undefined) => perCall ?? auth?.credential ?? o.credential ?? 'default';
  /** Endpoint → group learned from headers, oldest first (bounded: paths are the server's to vary). */
  const remember = (endpoint: string, group: string) => {
    learned.delete(endpoint);
    learned.set(endpoint, group);
    if (learned.size > maxLearnedGroups * 10) learned.delete(learned.keys().next().value as string);
  };
  /**
   * May a server-named group get its own lane? Up to `maxLearnedGroups` lanes of learned groups;
   * past that, idle ones are dropped first, else the group is ignored (reported once).
   */
  let capWarned = false;
  const learnedGroups = () => scheduler.allLanes().filter((l) => !l.exempt && !groups.has(l.group) && l.group !== defaultGroup).length;
  const mayLearn = (credential: string, group: string) => {
    if (groups.has(group) || scheduler.has(credential, group)) return true;
    if (scheduler.size < maxLearnedGroups || learnedGroups() < maxLearnedGroups) return true;
    scheduler.sweep(0);
    if (learnedGroups() < maxLearnedGroups) return true;
    if (!capWarned) {
      capWarned = true;
      warnFor(defaultGroup)({ header: 'x-rate-limit-group', value: group, reason: `more than ${maxLearnedGroups} learned groups (maxLearnedGroups); new ones use the default group` });
    }
    return false;
  };
  let pending = 0;
  const laneOf = (credential: string, group: string): Lane => {
    const lane = scheduler.lane(credential, group);
    if (lane.source === 'none') {
      const g = groups.get(group);
      if (g !== undefined) scheduler.setLimit(lane, g, 'config');
    }
    return lane;
  };
  let ids = 0;
  let closed = false;

  async function send(input: string | URL | Request, init: ClientRequestInit = {}): Promise<Response> {
    if (closed) throw new ClientClosedError();
    const cost = init.cost ?? 1;
    if (!Number.isInteger(cost) || cost < 1 || cost > MAX_CHECKED_COST) {
      throw new SluiceConfigError('cost', `must be an integer from 1 to ${MAX_CHECKED_COST}, got ${String(init.cost)}`);
    }
    if (init.credential !== undefined && (typeof init.credential !== 'string' || init.credential.length === 0)) {
      throw new SluiceConfigError('credential', 'must be a non-empty string');
    }
    if (init.credential !== undefined && auth !== undefined) {
      throw new SluiceConfigError('credential', 'a per-call credential cannot be combined with the client\'s auth (its token would be sent for another user)');
    }
    if (pending >= maxQueued) throw new QueueFullError(maxQueued);
    pending++;
    try {
      return await sendOnce(input, init, cost);
    } finally {
      pending--;
    }
  }

  async function sendOnce(input: string | URL | Request, init: ClientRequestInit, cost: number): Promise<Response> {
    const id = ++ids;
    const t0 = Date.now();
    let url: URL;
    let method = (init.method ?? 'GET').toUpperCase();
    let headersIn: HeadersInit | undefined = init.headers;
    let body = init.body;
    if (typeof Request !== 'undefined' && input instanceof Request) {
      url = new URL(input.url);
      method = (init.method ?? input.method).toUpperCase();
      headersIn = init.headers ?? input.headers;
      if (body === undefined && method !== 'GET' && method !== 'HEAD') body = await input.arrayBuffer();
    } else {
      url = new URL(String(input), o.baseUrl);
    }
    const endpoint = endpointKey(method, url.pathname);
    const explicit = init.group?.toLowerCase() ?? routeGroup(routes, method, url.pathname);
    const callTimeout = init.timeoutMs ?? timeoutMs;
    const deadline = t0 + callTimeout;
    const callMaxWait = init.maxWaitMs ?? maxWaitMs;
    const replayable = body === undefined || body === null || typeof body === 'string' || body instanceof URLSearchParams || body instanceof ArrayBuffer || ArrayBuffer.isView(body) || (typeof Blob !== 'undefined' && body instanceof Blob);
    const retryable = replayable && (init.idempotent ?? (isIdempotent(method) || retry.nonIdempotent));
    const userSignal = init.signal ?? undefined;
    const groupNow = () => explicit ?? learned.get(endpoint) ?? defaultGroup;
    emitter.emit('queued', { id, method, url: url.toString(), group: groupNow() });
    budget.request();
    let attempt = 0;
    let retries = 0;
    let throttles = 0;
    let reauthed = false;
    let seq: number | undefined;
    try {
      for (;;) {
        if (userSignal?.aborted) throw new RequestAbortedError({ cause: userSignal.reason });
        const token = auth === undefined ? undefined : await auth.token(deadline, callTimeout);
        const credential = credentialOf(init.credential);
        const lane = laneOf(credential, groupNow());
        if (lane.limit !== undefined && cost > lane.limit.limit) {
          throw new SluiceConfigError('cost', `${cost} is above the limit of group "${lane.group}" (${lane.limit.limit} per ${lane.limit.windowMs} ms)`);
        }
        const permit = await scheduler.acquire(lane, {
          cost,
          ...(seq === undefined ? {} : { seq }),
          priority: init.priority ?? 0,
          deadline,
          timeoutMs: callTimeout,
          maxWaitMs: callMaxWait,
          endpoint,
          signal: userSignal,
        });
        attempt++;
        seq = permit.seq;
        emitter.emit('sent', { id, attempt, group: lane.group });
        const headers = new Headers(headersIn);
        if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
        const left = deadline - Date.now();
        // The deadline bounds the wait for the response (headers), like ky's timeout; the timer is
        // cleared then. AbortSignal.timeout kept a timer and two signals alive per call for the
        // whole timeoutMs (300 s): the heap grew with every response until then.
        const deadlineAc = new AbortController();
        const deadlineTimer = setTimeout(() => deadlineAc.abort(new DOMException('the call\'s deadline (timeoutMs) passed', 'TimeoutError')), Math.max(1, left));
        let res: Response;
        try {
          const { group: _g, priority: _p, timeoutMs: _t, maxWaitMs: _m, idempotent: _i, cost: _c, credential: _cr, ...rest } = init;
          const signal = userSignal ? AbortSignal.any([deadlineAc.signal, userSignal]) : deadlineAc.signal;
          res = await fetchImpl(url, { ...rest, method, headers, body: body ?? null, signal });
        } catch (err) {
          clearTimeout(deadlineTimer);
          scheduler.release(permit);
          if (userSignal?.aborted) throw new RequestAbortedError({ cause: err });
          if (Date.now() >= deadline) throw new DeadlineExceededError(callTimeout, `during attempt ${attempt}`, { cause: err });
          if (!retryable || retries >= retry.retries) throw err;
          if (!budget.tryRetry()) throw new RetryBudgetExceededError(undefined, { cause: err });
          const delay = backoffMs(retry, retries++);
          if (Date.now() + delay >= deadline) throw new DeadlineExceededError(callTimeout, 'before the next retry', { cause: err });
          emitter.emit('retried', { id, attempt, reason: 'network', delayMs: delay });
          await sleep(delay, userSignal);
          continue;
        }
        clearTimeout(deadlineTimer);
        const info = parseRateLimitHeaders(res.headers, Date.now(), warnFor(lane.group));
        let target = lane;
        if (info.group !== undefined && info.group !== lane.group && explicit === undefined && !lane.exempt && mayLearn(credential, info.group)) {
          remember(endpoint, info.group);
          target = laneOf(credential, info.group);
        }
        const observed = scheduler.observe(permit, target, info, res.status);
        // Waiting callers of the endpoint follow it to its group once the group's pause is set.
        scheduler.move(lane, endpoint, target);
        const pauseMs = await observed;
        scheduler.release(permit);
        if (pauseMs !== undefined) emitter.emit('throttled', { id, group: target.group, status: res.status, waitMs: pauseMs });
        if (res.status === 429) {
          if (throttles >= rateLimitRetries || !replayable) return finish(res);
          throttles++;
          await discard(res);
          emitter.emit('retried', { id, attempt, reason: '429', delayMs: pauseMs ?? 0 });
          continue;
        }
        if (auth !== undefined && token !== undefined) {
          if (res.status !== 401) auth.confirm(token);
          else {
            const open = auth.refused(token);
            if (open !== undefined) {
              await discard(res);
              throw open;
            }
          }
        }
        if (res.status === 401 && auth !== undefined && token !== undefined && !reauthed && replayable) {
          // Once: the token may have been revoked early. Expiry is handled before 401s happen.
          reauthed = true;
          await discard(res);
          emitter.emit('retried', { id, attempt, reason: '401', delayMs: 0 });
          continue;
        }
        if (retry.statuses.has(res.status) && retryable && retries < retry.retries) {
          if (!budget.tryRetry()) {
            await discard(res);
            throw new RetryBudgetExceededError(res.status);
          }
          const delay = backoffMs(retry, retries++);
          if (Date.now() + delay >= deadline) return finish(res);
          await discard(res);
          emitter.emit('retried', { id, attempt, reason: String(res.status), delayMs: delay });
          await sleep(delay, userSignal);
          continue;
        }
        return finish(res);
      }
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      emitter.emit('failed', { id, error });
      throw error;
    }
    function finish(res: Response): Response {
      emitter.emit('done', { id, status: res.status, attempts: attempt, ms: Date.now() - t0 });
      return res;
    }
  }

  return {
    fetch: send,
    on: (name, fn) => emitter.on(name, fn),
    setAuth: setAuthPublic,
    get tokenRequests() {
      return auth?.requests ?? 0;
    },
    lanes: () =>
      scheduler
        .allLanes()
        .map((l) => ({
          group: l.group,
          credential: l.credential,
          ...(l.limit ? { limit: { ...l.limit } } : {}),
          source: l.source,
          pausedUntil: l.pausedUntil,
          queued: l.queue.length,
          inFlight: l.inFlight,
          ...(l.aimd ? { adaptiveRate: l.aimd.rate } : {}),
        })),
    async close() {
      closed = true;
      scheduler.close(new ClientClosedError());
      if (ownStore) await store.close();
    },
  };
}
