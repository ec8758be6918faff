import { quotaWindow } from '../../calendar.js';
import type { Rule } from '../../rule.js';

/** One period in µs: `[start, end)`. */
export interface Period {
  readonly start: number;
  readonly end: number;
}

/**
 * The quota period of `rule` anchored at `anchorUs` (a whole millisecond) that contains `now`
 * (µs). Monthly periods come from src/core/calendar.ts; the others are fixed lengths (`windowUs`).
 * Period edges are whole milliseconds, so comparing with `floor(now / 1000)` is exact.
 */
export function periodOf(rule: Rule, anchorUs: number, now: number): Period {
  if (rule.quota?.monthly === true) {
    const w = quotaWindow('monthly', anchorUs / 1000, Math.floor(now / 1000));
    return { start: w.start * 1000, end: w.end * 1000 };
  }
  const len = rule.windowUs;
  const k = Math.floor((now - anchorUs) / len);
  return { start: anchorUs + k * len, end: anchorUs + (k + 1) * len };
}
