/**
 * What the policy engine answers: the result of one request, the events worth logging, the
 * counters. Adapters and the gateway read these; the engine's parts build them.
 */
import type { Decision } from '../core/decision.js';

/** Why the engine answered as it did. */
export type PolicyReason =
  | 'allowed'
  /** A policy's limit is exhausted (429). */
  | 'rate-limited'
  /** A failed-auth policy's penalty is running (429). */
  | 'penalty'
  /** The client matched a `denyList` (403). */
  | 'deny-list'
  /** `onUnidentified: 'deny'` (401 / 400). */
  | 'unidentified'
  /** The store (or an identifier function) failed and the policy says `onStoreError: 'deny'` (503). */
  | 'store-error'
  /** The request's cost header or query parameter is not a whole number from 1 to its max (400). */
  | 'invalid-cost';

/** The engine's answer for one request. */
export interface PolicyResult {
  /** `allow`: let the request proceed (set `headers` on its response). `deny`: answer with `status`, `headers`, `body`. */
  readonly action: 'allow' | 'deny';
  /** 429, 503, 403, 401 or 400 (unidentified, invalid cost) when denied; 200 when allowed (the handler picks the real status). */
  readonly status: number;
  readonly reason: PolicyReason;
  /**
   * Response headers, lower-case names: `x-request-id` always; rate-limit headers per the
   * policies' `headerMode` on allowed and refused responses; `content-type` when denied.
   */
  readonly headers: Record<string, string>;
  /** The problem+json body when denied. */
  readonly body?: string;
  /** The combined decision of the strict policies (the refusing one when refused), if any ran. */
  readonly decision?: Decision;
  /** The policy that refused, when denied. */
  readonly policy?: string;
  /** The request id (incoming sane `x-request-id`, else a fresh UUID). */
  readonly requestId: string;
  /** A shadow policy would have refused this request (it was let through). */
  readonly shadowLimited: boolean;
  /**
   * Report the response once it is known: its status (failed-auth and count-by-response
   * counting) and, for costs read from the response, a reader of its headers (lower-case names;
   * without one every header counts as missing). Status 499 without a reader means the client
   * left before any response started (the gateway's aborted upstream call): response costs then
   * charge their `max`. Safe to call more than once (only the first call counts) and a no-op when
   * no policy needs it.
   */
  complete(status: number, header?: (name: string) => string | undefined): void;
}

/** An event worth logging or counting. */
export interface PolicyEvent {
  /** `block-started`: a policy's `blockDurationMinutes` block began for `key` (`retryAfterMs` long, escalated). */
  readonly type: 'limited' | 'shadow-limited' | 'penalty' | 'penalty-started' | 'block-started' | 'denied' | 'unidentified' | 'store-error' | 'identifier-error';
  readonly policy: string;
  readonly key?: string;
  readonly requestId: string;
  readonly path: string;
  readonly error?: unknown;
  /** `block-started`: the block's length; `penalty` from a block: the time it has left (ms). */
  readonly retryAfterMs?: number;
}

/** A pino-compatible logger (only `warn` is used). */
export interface PolicyLogger {
  warn(obj: object, msg: string): void;
}

/** Counters since the engine started. */
export interface PolicyStats {
  allowed: number;
  limited: number;
  shadowLimited: number;
  denied: number;
  storeErrors: number;
}

