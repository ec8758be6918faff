/**
 * The one event observability consumes: what happened to one request at the rate-limiting edge.
 * The gateway (or any adapter) builds it once the response status is known and hands it to
 * `Observer.record`, which is synchronous and cheap (no I/O on the request path).
 */
import type { Decision } from '../core/decision.js';

/** What the limiter did with a request, as observability counts it. */
export type Outcome =
  /** Admitted by every policy (or no policy applied). */
  | 'allowed'
  /** Refused by a rate limit or a penalty (429). */
  | 'limited'
  /** A shadow policy would have refused it; it was let through. */
  | 'shadow_limited'
  /** Refused for another reason (deny list, unidentified, store error with `onStoreError: deny`). */
  | 'denied'
  /** The store failed (whatever the policy then did). */
  | 'store_error';

/** One request seen by the gateway. Strings may be hostile: every consumer sanitises them. */
export interface RequestEvent {
  /** Epoch milliseconds when the request arrived. */
  readonly time: number;
  /** The request id (`x-request-id`) sent back to the client. */
  readonly requestId: string;
  /** The route's configured name or pattern (low cardinality: used as a metric label). */
  readonly route: string;
  readonly method: string;
  /** Path without the query string (high cardinality: logged, never a label). */
  readonly path: string;
  /** Final response status (429 for a refusal, the upstream's status otherwise). */
  readonly status: number;
  /** The authenticated consumer's `sub`, when authentication ran. */
  readonly consumer?: string;
  readonly tier?: string;
  /** The rate-limit key that was evaluated. */
  readonly key?: string;
  /** The client IP the limiter used. */
  readonly ip: string;
  /** The deciding policy (the refusing one when refused). */
  readonly policy?: string;
  /** The combined decision, when a policy ran; its `policies` feed the near-limit warnings. */
  readonly decision?: Decision;
  /** Whether the limiter admitted the request. */
  readonly allowed: boolean;
  /** A shadow policy would have refused this request. */
  readonly shadow?: boolean;
  /** The store failed while deciding this request (error code or message). */
  readonly storeError?: string;
  /** Total time spent handling the request, in ms. */
  readonly durationMs: number;
  /** Time the store call took, in ms, when one was made. */
  readonly storeLatencyMs?: number;
}

/** Classify an event for counters. */
export function outcomeOf(e: RequestEvent): Outcome {
  if (e.storeError !== undefined) return 'store_error';
  if (!e.allowed) return e.status === 429 ? 'limited' : 'denied';
  if (e.shadow) return 'shadow_limited';
  return 'allowed';
}

/** The identity analytics and warnings attribute a request to: the consumer, else the key, else the IP. */
export function whoOf(e: RequestEvent): string {
  return e.consumer ?? e.key ?? e.ip;
}
