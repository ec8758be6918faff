/**
 * Parsers for the rate-limit response fields a client can meet:
 * IETF `RateLimit` / `RateLimit-Policy` (draft-10 Lists, draft-7 Dictionary, draft-6 separate
 * `RateLimit-Limit/-Remaining/-Reset`), `X-RateLimit-*` (GitHub, Vimeo...), RingCentral's
 * `X-Rate-Limit-Group/-Limit/-Remaining/-Window`, Discord's `X-RateLimit-Reset-After`, and
 * `Retry-After` (seconds with decimals, or one of RFC 9110's three HTTP-date forms).
 *
 * Every value is validated: malformed, negative, absurdly large or non-numeric values are ignored
 * or clamped and reported through `warn`, never trusted. Structured fields are parsed by
 * `structured-headers` (RFC 9651, strict: a malformed field is ignored whole, as the RFC asks). The result is plain numbers the scheduler
 * can act on without further checks.
 */

import { parseDictionary, parseList, Token, type BareItem, type Item, type Parameters } from 'structured-headers';

/** What one response said about the rate limit, normalised to ms and relative times. */
export interface RateLimitInfo {
  /** Which header family the quota numbers came from. */
  format: 'draft-10' | 'draft-7' | 'draft-6' | 'x-ratelimit' | 'x-rate-limit' | 'shopify' | 'none';
  /** Rate-limit group named by the server (`X-Rate-Limit-Group`, `X-RateLimit-Resource`, the IETF policy names). */
  group?: string;
  /** Requests allowed per window. */
  limit?: number;
  /** Requests left now (after this one). */
  remaining?: number;
  /** Window length in ms (RingCentral `X-Rate-Limit-Window`, IETF `w`). */
  windowMs?: number;
  /** Ms until (more) quota is available (`t`, `reset`). */
  resetMs?: number;
  /**
   * The reset was an epoch time in whole seconds (`X-RateLimit-Reset: 1767268800`): rounded up by
   * the server, so the quota comes back within the second before it, not necessarily at it.
   */
  resetEpochSeconds?: true;
  /** Ms from `Retry-After`. */
  retryAfterMs?: number;
  /**
   * `Retry-After` was an HTTP date: whole seconds, so the moment it names is within the second
   * before it (a server rounding up), not necessarily at it.
   */
  retryAfterDate?: true;
}

/** A header value that was rejected or clamped. */
export interface HeaderWarning {
  header: string;
  value: string;
  reason: string;
}

/** Longest wait any header may ask for: 24 h. Larger values are clamped (and reported). */
export const MAX_HEADER_WAIT_MS = 86_400_000;
/** Largest believable quota count. Larger counts are ignored (and reported). */
export const MAX_HEADER_COUNT = 1_000_000_000;

type Warn = (w: HeaderWarning) => void;

// ---------------------------------------------------------------------------------------------
// Structured Field Values (RFC 9651) through `structured-headers`: Lists and Dictionaries of Items.

/** Parse an RFC 9651 List of Items; throws when malformed (inner lists are no rate-limit syntax). */
function sfList(value: string): Item[] {
  const out: Item[] = [];
  for (const member of parseList(value.trim())) {
    if (Array.isArray(member[0])) throw new SyntaxError('inner lists are not used by any rate-limit field');
    out.push(member as Item);
  }
  return out;
}

/** Parse an RFC 9651 Dictionary; throws when malformed. */
function sfDictionary(value: string): Map<string, Item> {
  const out = new Map<string, Item>();
  for (const [k, member] of parseDictionary(value.trim())) {
    if (Array.isArray(member[0])) throw new SyntaxError('inner lists are not used by any rate-limit field');
    out.set(k, member as Item);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Numbers and times.

/** A non-negative integer count, or undefined (reported) when the value is not one. */
export function parseCount(header: string, raw: string, warn: Warn): number | undefined {
  const v = raw.trim();
  if (!/^\d+$/.test(v)) {
    warn({ header, value: raw, reason: 'not a non-negative integer; ignored' });
    return undefined;
  }
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n > MAX_HEADER_COUNT) {
    warn({ header, value: raw, reason: `count above ${MAX_HEADER_COUNT}; ignored` });
    return undefined;
  }
  return n;
}

/** Clamp a wait in ms to [0, MAX_HEADER_WAIT_MS], reporting a clamp. */
function clampWait(header: string, raw: string, ms: number, warn: Warn): number {
  if (ms > MAX_HEADER_WAIT_MS) {
    warn({ header, value: raw, reason: `wait above ${MAX_HEADER_WAIT_MS} ms; clamped` });
    return MAX_HEADER_WAIT_MS;
  }
  return ms < 0 ? 0 : ms;
}

/** A delay in whole seconds (delay-seconds), as ms, clamped. */
function parseSeconds(header: string, raw: string, warn: Warn): number | undefined {
  const v = raw.trim();
  if (!/^\d+$/.test(v)) {
    warn({ header, value: raw, reason: 'not a non-negative integer number of seconds; ignored' });
    return undefined;
  }
  return clampWait(header, raw, Number(v) * 1000, warn);
}

// HTTP dates (RFC 9110 §5.6.7): IMF-fixdate and the two obsolete forms, nothing else.
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MON = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
/** `Sun, 06 Nov 1994 08:49:37 GMT` */
const IMF_FIXDATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) ${MON} (\\d{4}) ${TIME} GMT`);
/** `Sunday, 06-Nov-94 08:49:37 GMT` (obsolete RFC 850 form) */
const RFC850_DATE = new RegExp(`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-${MON}-(\\d{2}) ${TIME} GMT`);
/** `Sun Nov  6 08:49:37 1994` (obsolete asctime form) */
const ASCTIME_DATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MON} ([ \\d]\\d) ${TIME} (\\d{4})`);

/**
 * Read one HTTP-date at the start of `s`: epoch ms and the characters it took, or undefined.
 * Strict on purpose, no `Date.parse`: its leniency varies by engine and it reads "Tuesday 5" or
 * "2015" as dates. A value in none of RFC 9110's three forms, or an impossible time, is no date.
 */
export function readHttpDate(s: string, now: number): { ms: number; length: number } | undefined {
  let year: number;
  let fields: [mon: string, day: string, hh: string, mm: string, ss: string];
  let m = IMF_FIXDATE.exec(s);
  if (m !== null) {
    year = Number(m[3]);
    fields = [m[2], m[1], m[4], m[5], m[6]] as typeof fields;
  } else if ((m = RFC850_DATE.exec(s)) !== null) {
    // RFC 9110: a two-digit year more than 50 years in the future is the most recent past one.
    const thisYear = new Date(now).getUTCFullYear();
    year = Math.floor(thisYear / 100) * 100 + Number(m[3]);
    if (year > thisYear + 50) year -= 100;
    fields = [m[2], m[1], m[4], m[5], m[6]] as typeof fields;
  } else if ((m = ASCTIME_DATE.exec(s)) !== null) {
    year = Number(m[6]);
    fields = [m[1], m[2], m[3], m[4], m[5]] as typeof fields;
  } else return undefined;
  const [mon, dd, hh, mm, ss] = fields;
  const [d, h, mi, se] = [Number(dd.trim()), Number(hh), Number(mm), Number(ss)];
  const ms = Date.UTC(year, MONTHS.indexOf(mon), d, h, mi, Math.min(se, 59));
  // Date.UTC rolls 31 Feb over into March: refuse instead.
  if (h > 23 || mi > 59 || se > 60 || d < 1 || new Date(ms).getUTCDate() !== d) return undefined;
  return { ms, length: m[0].length };
}

/** An HTTP date as ms from `now`; a past date is 0 (reported), an invalid one undefined. */
function parseDate(header: string, raw: string, now: number, warn: Warn): number | undefined {
  const v = raw.trim();
  const d = readHttpDate(v, now);
  if (d === undefined || d.length !== v.length) {
    warn({ header, value: raw, reason: 'not an HTTP date (IMF-fixdate, RFC 850 or asctime); ignored' });
    return undefined;
  }
  return pastIsZero(header, raw, d.ms - now, warn);
}

function pastIsZero(header: string, raw: string, ms: number, warn: Warn): number {
  if (ms < -1000) warn({ header, value: raw, reason: 'time in the past; treated as 0' });
  return clampWait(header, raw, ms, warn);
}

const DELAY = /^\d+(?:\.\d+)?/;

/**
 * `Retry-After`: delay-seconds or HTTP-date (RFC 9110 §10.2.3), as ms from `now`.
 * Delay-seconds may carry decimals (`1.5`), as ky, got and axios-retry read them. A field sent
 * twice arrives joined (`3, 3`): equal members are one value; different ones take the longest wait
 * (reported). Anything else is ignored and reported.
 */
export function parseRetryAfter(raw: string, now: number, warn: Warn): number | undefined {
  const v = raw.trim();
  const waits: number[] = [];
  let i = 0;
  while (i < v.length) {
    const rest = v.slice(i);
    const delay = DELAY.exec(rest);
    const date = delay === null ? readHttpDate(rest, now) : undefined;
    if (delay !== null) {
      waits.push(Math.ceil(Number(delay[0]) * 1000));
      i += delay[0].length;
    } else if (date !== undefined) {
      waits.push(date.ms - now);
      i += date.length;
    } else {
      const reason = rest.startsWith('-') ? 'negative delay; ignored' : 'neither delay-seconds nor an HTTP date; ignored';
      warn({ header: 'retry-after', value: raw, reason });
      return undefined;
    }
    const sep = /^\s*(?:,\s*|$)/.exec(v.slice(i));
    if (sep === null || (sep[0].includes(',') && i + sep[0].length >= v.length)) {
      warn({ header: 'retry-after', value: raw, reason: 'neither delay-seconds nor an HTTP date; ignored' });
      return undefined;
    }
    i += sep[0].length;
  }
  if (waits.length === 0) {
    warn({ header: 'retry-after', value: raw, reason: 'empty; ignored' });
    return undefined;
  }
  const longest = Math.max(...waits);
  if (waits.some((w) => w !== longest)) {
    warn({ header: 'retry-after', value: raw, reason: 'several different values; the longest wait is used' });
  }
  return pastIsZero('retry-after', raw, longest, warn);
}

/** Clock difference tolerated between client and server when reading an absolute reset time. */
const SKEW_MS = 300_000;

/**
 * A vendor reset value (`X-RateLimit-Reset` and kin): an HTTP date, or a number that may be delta
 * seconds (Twitch, draft-6), epoch seconds (GitHub, X; Discord with decimals) or epoch ms.
 *
 * The ambiguity rule: the right reading is the one that puts the reset in the plausible range
 * [now - 5 min of clock skew, now + 24 h]. The three ranges cannot overlap for any real clock
 * (a delta is at most 86 400, an epoch in seconds is above 1.7e9, in ms above 1.7e12), so at most
 * one reading fits. When none fits (a past or absurd value), magnitude decides as
 * `ratelimit-header-parser` does (> 1e12 epoch ms, > 1e9 epoch s, else delta), and the value is
 * reported and clamped.
 */
export function parseReset(header: string, raw: string, now: number, warn: Warn): number | undefined {
  const v = raw.trim();
  if (/[a-z]/i.test(v)) return parseDate(header, raw, now, warn);
  if (!/^\d+(\.\d+)?$/.test(v) || v.length > 20) {
    warn({ header, value: raw, reason: 'not a time; ignored' });
    return undefined;
  }
  const n = Number(v);
  const readings = [n * 1000, n * 1000 - now, n - now];
  for (const ms of readings) if (ms >= -SKEW_MS && ms <= MAX_HEADER_WAIT_MS) return Math.max(0, Math.ceil(ms));
  const ms = n > 1e12 ? n - now : n > 1e9 ? n * 1000 - now : n * 1000;
  return pastIsZero(header, raw, Math.ceil(ms), warn);
}

// ---------------------------------------------------------------------------------------------

/** Something with a `get(name)` returning one combined value per field (fetch `Headers`). */
export interface HeaderSource {
  get(name: string): string | null;
}

const intParam = (p: Parameters, k: string): number | undefined => {
  const v = p.get(k);
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
};
const nameOf = (v: BareItem): string | undefined => (typeof v === 'string' ? v : v instanceof Token ? v.toString() : undefined);

/** Draft-8/10 `RateLimit` + `RateLimit-Policy` (Lists of named Items). */
function draft10(rl: string, policy: string | null, warn: Warn): Partial<RateLimitInfo> | undefined {
  let items: Item[];
  try {
    items = sfList(rl);
  } catch {
    return undefined;
  }
  let best: { name: string | undefined; r: number; t: number | undefined } | undefined;
  for (const [value, p] of items) {
    const r = p.get('r');
    const t = p.get('t');
    // Decimals and negative integers are valid SF but invalid here: the whole field is ignored.
    if ((r !== undefined && intParam(p, 'r') === undefined) || (t !== undefined && intParam(p, 't') === undefined)) {
      warn({ header: 'ratelimit', value: rl, reason: 'r/t must be non-negative integers; field ignored' });
      return {};
    }
    if (r === undefined) continue;
    const rv = r as number;
    if (rv > MAX_HEADER_COUNT) {
      warn({ header: 'ratelimit', value: rl, reason: `r above ${MAX_HEADER_COUNT}; ignored` });
      continue;
    }
    if (best === undefined || rv < best.r) best = { name: nameOf(value), r: rv, t: t as number | undefined };
  }
  if (best === undefined) return undefined;
  const out: Partial<RateLimitInfo> = { format: 'draft-10', remaining: best.r };
  // The policy names identify the server's quotas: an endpoint answered under other names counts
  // against other quotas, so it must not share a lane (and its learned budget) with this one. All
  // names, sorted: the item closest to exhaustion changes from answer to answer, the set does not.
  const names = [...new Set(items.map(([v]) => nameOf(v)))];
  if (names.every((n): n is string => n !== undefined && n.length > 0)) {
    const id = names
      .map((n) => n.toLowerCase().replace(/[^\x21-\x7e]|,/g, '_'))
      .sort()
      .join(',');
    if (id.length <= 100) out.group = id;
  }
  if (best.t !== undefined) out.resetMs = clampWait('ratelimit', rl, best.t * 1000, warn);
  if (policy !== null) {
    try {
      for (const [value, params] of sfList(policy)) {
        if (nameOf(value) !== best.name) continue;
        const q = intParam(params, 'q');
        const w = intParam(params, 'w');
        if (q !== undefined && q <= MAX_HEADER_COUNT) out.limit = q;
        if (w !== undefined && w > 0) out.windowMs = clampWait('ratelimit-policy', policy, w * 1000, warn);
      }
    } catch {
      warn({ header: 'ratelimit-policy', value: policy, reason: 'malformed structured field; ignored' });
    }
  }
  return out;
}

/** Draft-7 `RateLimit: limit=100, remaining=50, reset=5` (a Dictionary). */
function draft7(rl: string, policy: string | null, warn: Warn): Partial<RateLimitInfo> | undefined {
  let d: Map<string, Item>;
  try {
    d = sfDictionary(rl);
  } catch {
    return undefined;
  }
  const num = (k: string): number | undefined => {
    const v = d.get(k)?.[0];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_HEADER_COUNT) {
      warn({ header: 'ratelimit', value: rl, reason: `${k} is not a believable non-negative integer; ignored` });
      return undefined;
    }
    return v;
  };
  if (!d.has('limit') && !d.has('remaining') && !d.has('reset')) return undefined;
  const out: Partial<RateLimitInfo> = { format: 'draft-7' };
  const limit = num('limit');
  const remaining = num('remaining');
  const reset = num('reset');
  if (limit !== undefined) out.limit = limit;
  if (remaining !== undefined) out.remaining = remaining;
  if (reset !== undefined) out.resetMs = clampWait('ratelimit', rl, reset * 1000, warn);
  if (policy !== null) {
    try {
      const w = intParam(sfList(policy)[0]?.[1] ?? new Map(), 'w');
      if (w !== undefined && w > 0) out.windowMs = clampWait('ratelimit-policy', policy, w * 1000, warn);
    } catch {
      /* informative only */
    }
  }
  return out;
}

/**
 * Read every known rate-limit header of a response. Formats are tried in the order of
 * `research/standards.md` §2.8: draft-10 List, draft-7 Dictionary, draft-6 fields, `X-RateLimit-*`,
 * RingCentral `X-Rate-Limit-*`. `Retry-After` is read independently (it always wins for waits).
 */
export function parseRateLimitHeaders(headers: HeaderSource, now: number, warn: Warn): RateLimitInfo {
  const info: RateLimitInfo = { format: 'none' };
  const get = (n: string): string | null => {
    const v = headers.get(n);
    if (v !== null && v.length > 4096) {
      warn({ header: n, value: v.slice(0, 64), reason: 'over 4096 characters; ignored' });
      return null;
    }
    return v;
  };
  const retry = get('retry-after');
  if (retry !== null) {
    const ms = parseRetryAfter(retry, now, warn);
    if (ms !== undefined) info.retryAfterMs = ms;
    if (ms !== undefined && !DELAY.test(retry.trim())) info.retryAfterDate = true;
  }
  const group = get('x-rate-limit-group') ?? get('x-ratelimit-resource');
  if (group !== null) {
    const g = group.trim();
    if (g.length > 0 && g.length <= 100 && /^[\x21-\x7e]+$/.test(g)) info.group = g.toLowerCase();
    else warn({ header: 'x-rate-limit-group', value: group, reason: 'not a short printable token; ignored' });
  }

  const rl = get('ratelimit');
  const policy = get('ratelimit-policy');
  if (rl !== null) {
    const parsed = draft10(rl, policy, warn) ?? draft7(rl, policy, warn);
    if (parsed === undefined) warn({ header: 'ratelimit', value: rl, reason: 'malformed structured field; ignored' });
    // A group the server names outright (`X-Rate-Limit-Group`) wins over the policy names.
    else if (parsed.format !== undefined) return { ...info, ...parsed, ...(info.group !== undefined ? { group: info.group } : {}) };
    else return info;
  }

  const shopify = get('x-shopify-shop-api-call-limit');
  if (shopify !== null) {
    // Shopify's leaky bucket: `used/capacity`, no time given (the leak rate is per plan).
    const m = /^\s*(\d{1,9})\/(\d{1,9})\s*$/.exec(shopify);
    if (m !== null && Number(m[2]) > 0) {
      const cap = Number(m[2]);
      return { ...info, format: 'shopify', limit: cap, remaining: Math.max(0, cap - Number(m[1])) };
    }
    warn({ header: 'x-shopify-shop-api-call-limit', value: shopify, reason: 'not used/capacity; ignored' });
  }

  const families: [RateLimitInfo['format'], string][] = [
    ['draft-6', 'ratelimit-'],
    ['x-ratelimit', 'x-ratelimit-'],
    ['x-rate-limit', 'x-rate-limit-'],
  ];
  for (const [format, p] of families) {
    const lim = get(`${p}limit`);
    const rem = get(`${p}remaining`);
    const reset = get(`${p}reset`);
    const win = get(`${p}window`);
    if (lim === null && rem === null && reset === null && win === null) continue;
    info.format = format;
    if (lim !== null) {
      const n = parseCount(`${p}limit`, lim, warn);
      if (n !== undefined && n > 0) info.limit = n;
      else if (n === 0) warn({ header: `${p}limit`, value: lim, reason: 'a limit of 0 is not usable; ignored' });
    }
    if (rem !== null) {
      const n = parseCount(`${p}remaining`, rem, warn);
      if (n !== undefined) info.remaining = n;
    }
    if (reset !== null) {
      // Draft-6 `RateLimit-Reset` is delta seconds; vendors also use epoch seconds, ms or dates,
      // which the heuristic tells apart (a delta above 1e9 s is not believable anyway).
      const ms = parseReset(`${p}reset`, reset, now, warn);
      if (ms !== undefined) info.resetMs = ms;
      // An integer read as epoch seconds (a delta within 24 h is far below 1e9).
      if (ms !== undefined && /^\s*\d+\s*$/.test(reset) && Number(reset) > 1e9 && Number(reset) < 1e11) info.resetEpochSeconds = true;
    }
    const after = get(`${p}reset-after`);
    if (after !== null) {
      // Discord: seconds until the reset, with decimals; exact where the epoch reset is rounded.
      if (/^\d+(\.\d+)?$/.test(after.trim())) {
        info.resetMs = clampWait(`${p}reset-after`, after, Math.ceil(Number(after) * 1000), warn);
        delete info.resetEpochSeconds;
      } else warn({ header: `${p}reset-after`, value: after, reason: 'not a non-negative number of seconds; ignored' });
    }
    if (win !== null) {
      const ms = parseSeconds(`${p}window`, win, warn);
      if (ms !== undefined && ms > 0) info.windowMs = ms;
      else if (ms === 0) warn({ header: `${p}window`, value: win, reason: 'a window of 0 is not usable; ignored' });
    }
    if (format === 'draft-6' && info.windowMs === undefined && policy !== null && info.limit !== undefined) {
      // Draft-6 states the window in `RateLimit-Policy: 5;w=1` (express-rate-limit sends it): the
      // item whose quota is the limit. Without it the budget was paced per reset period only.
      try {
        for (const [value, params] of sfList(policy)) {
          const w = intParam(params, 'w');
          if (value === info.limit && w !== undefined && w > 0) {
            info.windowMs = clampWait('ratelimit-policy', policy, w * 1000, warn);
            break;
          }
        }
      } catch {
        warn({ header: 'ratelimit-policy', value: policy, reason: 'malformed structured field; ignored' });
      }
    }
    return info;
  }
  return info;
}
