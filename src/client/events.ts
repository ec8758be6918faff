/**
 * Typed progress events of the client. One event per state change of a request, so a progress bar,
 * a log line or a metric can follow a batch without wrapping every call.
 */
import type { HeaderWarning } from './headers.js';

/** Every event the client emits, by name. `id` identifies one `client.fetch` call. */
export interface ClientEvents {
  /** The call entered the scheduler. */
  queued: { id: number; method: string; url: string; group: string };
  /** An attempt left for the network. `attempt` counts from 1. */
  sent: { id: number; attempt: number; group: string };
  /** The server answered 429 (or 503 with Retry-After): the group pauses for `waitMs`. */
  throttled: { id: number; group: string; status: number; waitMs: number };
  /** The call will be attempted again after `delayMs` (`reason`: a status, `network`, `401`, `429`). */
  retried: { id: number; attempt: number; reason: string; delayMs: number };
  /** The call finished with a response handed to the caller. */
  done: { id: number; status: number; attempts: number; ms: number };
  /** The call failed with an error (typed: see errors.ts). */
  failed: { id: number; error: Error };
  /** A rate-limit header was malformed or hostile and was clamped or ignored. */
  warning: HeaderWarning & { group: string };
  /** A group's limit was learned (or tightened) from response headers. */
  learned: { group: string; limit: number; windowMs: number; endpoint?: string };
  /** The credential's breaker opened: every request on it fails until new credentials are set. */
  'auth-failed': { credential: string; error: Error };
  /** A token was obtained or refreshed. */
  'token-refreshed': { credential: string; grantType: string; expiresInMs: number | undefined };
}

export type ClientEventName = keyof ClientEvents;
type Listener<K extends ClientEventName> = (event: ClientEvents[K]) => void;

/** A minimal typed event emitter (no dependency on node:events so the client runs anywhere). */
export class ClientEmitter {
  private readonly listeners = new Map<ClientEventName, Set<(e: never) => void>>();
  /** Subscribe; returns a function that unsubscribes. */
  on<K extends ClientEventName>(name: K, fn: Listener<K>): () => void {
    let set = this.listeners.get(name);
    if (set === undefined) this.listeners.set(name, (set = new Set()));
    set.add(fn as (e: never) => void);
    return () => this.off(name, fn);
  }
  off<K extends ClientEventName>(name: K, fn: Listener<K>): void {
    this.listeners.get(name)?.delete(fn as (e: never) => void);
  }
  /** Emit; a throwing listener is isolated so it cannot break a request. */
  emit<K extends ClientEventName>(name: K, event: ClientEvents[K]): void {
    const set = this.listeners.get(name);
    if (set === undefined) return;
    for (const fn of set) {
      try {
        (fn as Listener<K>)(event);
      } catch {
        /* a listener's bug must not fail the request */
      }
    }
  }
}
