/**
 * Build a {@link RequestEvent} from what the HTTP layer already has: the request info and the
 * policy engine's result. The gateway and custom node:http servers call this after the response.
 */
import type { PolicyResult } from '../http/engine.js';
import type { HttpRequestInfo } from '../http/request.js';
import type { RequestEvent } from './events.js';

/** Inputs of {@link eventFromPolicy}. */
export interface PolicyEventInput {
  /** The route's configured name (a metric label: keep it low-cardinality). */
  route: string;
  request: HttpRequestInfo;
  /** The engine's result (absent when the route has no policy). */
  result?: PolicyResult;
  /** The final response status. */
  status: number;
  /** `Date.now()` when the request arrived. */
  time: number;
  /** Milliseconds from arrival to the end of the response. */
  durationMs: number;
  /** Milliseconds the engine's store call took, when measured. */
  storeLatencyMs?: number;
  /** The client IP the limiter used (default: the socket address). */
  ip?: string;
  /** The request was refused outside the engine (the gateway's own 401 / 503): counted as `denied`. */
  refused?: boolean;
  /** The store failed while deciding, even if the policy then let the request through (`onStoreError: allow`). */
  storeError?: string;
}

/** Map a policy result onto a request event. */
export function eventFromPolicy(i: PolicyEventInput): RequestEvent {
  const r = i.result;
  const user = i.request.user;
  return {
    time: i.time,
    requestId: r?.requestId ?? '',
    route: i.route,
    method: i.request.method,
    path: i.request.path,
    status: i.status,
    consumer: user?.sub,
    tier: user?.tier,
    key: r?.decision?.key,
    ip: i.ip ?? i.request.remoteAddress,
    policy: r?.policy ?? r?.decision?.policy,
    decision: r?.decision,
    allowed: i.refused !== true && (r === undefined || r.action === 'allow'),
    shadow: r?.shadowLimited || undefined,
    storeError: r?.reason === 'store-error' ? 'store-error' : i.storeError,
    durationMs: i.durationMs,
    storeLatencyMs: i.storeLatencyMs,
  };
}
