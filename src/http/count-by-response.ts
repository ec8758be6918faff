/**
 * Count by response: a policy that only counts some responses (Zuplo's `quotaOnStatusCodes`,
 * express-rate-limit's `skipSuccessfulRequests` / `skipFailedRequests`). Such a policy is peeked
 * when the request arrives (an exhausted key is refused) and charged when the response status is
 * known (`PolicyResult.complete(status)`), only when the status counts.
 *
 * Bound: requests of one key that are in flight at the same time were all admitted by the peek
 * before any was charged, so a key may exceed its limit by at most the number of its requests
 * in flight at once (minus one). Policies without these options are charged on arrival, exactly.
 */
import { SluiceConfigError } from '../core/errors.js';
import { describe } from '../core/rule.js';

/** Which response statuses a policy counts. */
export type StatusFilter = (status: number) => boolean;

const RANGE = /^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$/;

/**
 * Parse a status list: numbers, or strings of statuses and ranges (`"200-399"`, `"200-299, 404"`),
 * or an array of either.
 */
export function parseStatusList(value: unknown, field: string): StatusFilter {
  const parts: unknown[] = Array.isArray(value) ? value : [value];
  const ranges: [number, number][] = [];
  for (const part of parts) {
    const items = typeof part === 'string' ? part.split(',') : [part];
    for (const item of items) {
      let lo: number;
      let hi: number;
      if (typeof item === 'number') {
        lo = hi = item;
      } else {
        const m = typeof item === 'string' ? RANGE.exec(item) : null;
        if (m === null) throw new SluiceConfigError(field, `must list HTTP statuses or ranges like "200-399", got ${describe(item)}`);
        lo = Number(m[1]);
        hi = m[2] === undefined ? lo : Number(m[2]);
      }
      if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 100 || hi > 599 || lo > hi) {
        throw new SluiceConfigError(field, `must list HTTP statuses 100-599 (ranges low-high), got ${describe(item)}`);
      }
      ranges.push([lo, hi]);
    }
  }
  if (ranges.length === 0) throw new SluiceConfigError(field, 'must list at least one HTTP status');
  return (s) => ranges.some(([lo, hi]) => s >= lo && s <= hi);
}

/** The options that make a policy count by response. */
export interface CountByResponseOptions {
  /** Count only responses with these statuses (`"200-399"`, `[200, 201]`). Zuplo's name for quotas: `quotaOnStatusCodes`. */
  countOnStatusCodes?: string | number | readonly (string | number)[];
  /** Zuplo's name of `countOnStatusCodes`. */
  quotaOnStatusCodes?: string | number | readonly (string | number)[];
  /** Do not count responses with status < 400 (express-rate-limit's name). */
  skipSuccessfulRequests?: boolean;
  /** Do not count responses with status >= 400 (express-rate-limit's name). */
  skipFailedRequests?: boolean;
}

/**
 * The status filter of a policy, or undefined when it counts every request on arrival.
 * @param at builds a field path for error messages.
 */
export function compileCountByResponse(o: CountByResponseOptions, at: (f: string) => string): StatusFilter | undefined {
  const given = (['countOnStatusCodes', 'quotaOnStatusCodes', 'skipSuccessfulRequests', 'skipFailedRequests'] as const).filter((f) => o[f] !== undefined);
  for (const f of ['skipSuccessfulRequests', 'skipFailedRequests'] as const) {
    if (o[f] !== undefined && typeof o[f] !== 'boolean') throw new SluiceConfigError(at(f), `must be true or false, got ${describe(o[f])}`);
  }
  if (given.length > 1) throw new SluiceConfigError(at(given[1] as string), `give only one of ${given.join(', ')}`);
  if (given.length === 0) return undefined;
  const f = given[0] as (typeof given)[number];
  if (f === 'skipSuccessfulRequests') return o.skipSuccessfulRequests === true ? (s) => s >= 400 : undefined;
  if (f === 'skipFailedRequests') return o.skipFailedRequests === true ? (s) => s < 400 : undefined;
  return parseStatusList(o[f], at(f));
}
