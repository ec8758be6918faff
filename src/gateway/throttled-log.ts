/**
 * Warnings that can fire on every request (a store outage, an unreachable JWKS) written at most
 * once per interval per topic: an outage must be visible in the log without flooding it. The
 * line after a quiet interval says how many were left out.
 */
import type { GatewayLogger } from './server.js';

/** Log `msg` for `topic` at most once per `intervalMs`. */
export type ThrottledWarn = (topic: string, msg: string, fields?: Record<string, unknown>) => void;

/** Build a {@link ThrottledWarn} on `log`. */
export function throttledWarn(log: GatewayLogger, intervalMs = 10_000, now: () => number = Date.now): ThrottledWarn {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (topic, msg, fields) => {
    const t = now();
    const s = last.get(topic);
    if (s !== undefined && t - s.at < intervalMs) {
      s.suppressed++;
      return;
    }
    // Topics are policy and route names from the config: a bounded set.
    last.set(topic, { at: t, suppressed: 0 });
    log.warn(msg, { ...fields, ...(s !== undefined && s.suppressed > 0 ? { suppressed: s.suppressed } : {}) });
  };
}
