/**
 * Cost per request: how many units of a policy's budget a request takes (Kong's and
 * rate-limiter-flexible's weights, Envoy's `hits_addend`, Cloudflare's complexity score).
 *
 * - A static number: `cost: 2` (0 = not counted: the request takes nothing; it is refused only
 *   while the key is overdrawn or blocked).
 * - From the request: a header (`{ header: 'x-cost', max: 100 }`), a query parameter
 *   (`{ query: 'cost', max: 100 }`) or, in code, a function of the request.
 * - From the response (an LLM upstream's `x-tokens-used`, a GraphQL complexity; Cloudflare's
 *   "score response header"): `{ responseHeader: 'x-tokens-used', max: 100000, reserve: 1 }` or, in
 *   code, `{ response: (res) => n, max }`. The request is admitted while any budget remains (it is
 *   decided with `reserve` units), and the rest (`real - reserve`) is charged unconditionally when
 *   the response arrives: the budget may go negative and later requests wait until it is paid back.
 *
 * Request values are client input: anything but a plain decimal integer from 1 to `max` is a 400
 * naming the header (never a cheaper or free request); a missing one costs `max`. Response values
 * come from the operator's upstream: a missing one charges only the reserve (the upstream metered
 * nothing, e.g. it failed early), an unreadable one or one above `max` charges `max`.
 */
import { SluiceConfigError } from '../core/errors.js';
import { MAX_LIMIT } from '../core/algorithms/limits.js';
import { describe } from '../core/rule.js';
import { HEADER_NAME } from '../policy/schema.js';
import type { HttpRequestInfo } from './request.js';

/** The response as a cost function sees it. */
export interface HttpResponseInfo {
  /** The response status. */
  readonly status: number;
  /** A response header by lower-case name (repeated fields joined with `, `), or undefined. */
  header(name: string): string | undefined;
}

/** A cost read from a request header: a decimal integer from 1 to `max`. */
export interface CostFromHeader {
  /** Request header carrying the cost (case-insensitive). */
  header: string;
  /** Largest accepted cost; a larger value is a 400. */
  max: number;
}

/** A cost read from a query parameter: a decimal integer from 1 to `max`. */
export interface CostFromQuery {
  /** Query parameter carrying the cost. */
  query: string;
  /** Largest accepted cost; a larger value is a 400. */
  max: number;
}

/** The part of a response cost shared by its forms. */
export interface ResponseCostLimits {
  /** Most units one response is charged (an unreadable value is charged this). Bounds the overdraft. */
  max: number;
  /** Units decided when the request arrives (the least a request costs). Default 1; 0 admits while the key is not overdrawn. */
  reserve?: number;
}

/** A cost read from a response header (an LLM upstream's `x-tokens-used`). */
export interface CostFromResponseHeader extends ResponseCostLimits {
  /** Response header carrying the real cost (case-insensitive). */
  responseHeader: string;
}

/** A cost computed from the response (library only). */
export interface CostFromResponse extends ResponseCostLimits {
  /** The real cost of the request (a non-negative integer; anything else is charged `max`). Must be synchronous. */
  response: (response: HttpResponseInfo, request: HttpRequestInfo) => number;
}

/** A cost computed from the request (library only): a non-negative integer. Must be synchronous. */
export type CostFunction = (request: HttpRequestInfo) => number;

/** How many units a request takes: a number, or read from the request or the response. */
export type CostOption = number | CostFunction | CostFromHeader | CostFromQuery | CostFromResponseHeader | CostFromResponse;

/** What a request's cost resolved to: units, or the `detail` of a 400 (bad client input). */
export type RequestCost = number | { readonly invalid: string };

/** A compiled cost. */
export type CompiledCost =
  | { readonly kind: 'static'; readonly units: number }
  | { readonly kind: 'request'; readonly of: (request: HttpRequestInfo) => RequestCost }
  | { readonly kind: 'response'; readonly reserve: number; readonly max: number; readonly of: (response: HttpResponseInfo, request: HttpRequestInfo) => number };

/** A plain decimal integer (HTTP OWS around it allowed): no sign, exponent, hex, list or fraction. */
const DECIMAL = /^[ \t]*(\d{1,16})[ \t]*$/;

/** Parse a decimal integer; undefined for anything else. */
function decimal(v: string): number | undefined {
  const m = DECIMAL.exec(v);
  return m === null ? undefined : Number(m[1]);
}

function integerIn(value: unknown, field: string, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_LIMIT) {
    throw new SluiceConfigError(field, `must be an integer from ${min} to ${MAX_LIMIT}, got ${describe(value)}`);
  }
  return value;
}

function onlyKeys(o: object, keys: readonly string[], field: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new SluiceConfigError(`${field}.${k}`, `unknown option (a cost takes ${keys.join(', ')})`);
}

/** A client-supplied cost: an integer from 1 to `max`, else the 400 detail. */
function clientCost(raw: string | string[] | undefined, what: string, max: number): RequestCost {
  if (raw === undefined) return max;
  const n = typeof raw === 'string' ? decimal(raw) : undefined;
  if (n === undefined || n < 1 || n > max) return { invalid: `${what} must be a whole number from 1 to ${max}` };
  return n;
}

/** Every value of query parameter `name` in the request target. */
function queryValues(req: HttpRequestInfo, name: string): string[] {
  const target = req.url ?? req.path;
  const q = target.indexOf('?');
  return q < 0 ? [] : new URLSearchParams(target.slice(q + 1)).getAll(name);
}

/**
 * Validate a cost option. Throws {@link SluiceConfigError} naming `field` (`p.cost`,
 * `p.cost.max`). Undefined when no cost is given (every request costs 1).
 */
export function compileCost(value: unknown, field: string): CompiledCost | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return { kind: 'static', units: integerIn(value, field, 0) };
  if (typeof value === 'function') {
    const fn = value as CostFunction;
    return {
      kind: 'request',
      of: (req) => {
        const n = fn(req);
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_LIMIT) throw new TypeError(`cost function must return an integer >= 0, got ${describe(n)}`);
        return n;
      },
    };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SluiceConfigError(field, `must be a number of units, a function, or { header, max }, { query, max }, { responseHeader, max, reserve }, got ${describe(value)}`);
  }
  const o = value as Record<string, unknown>;
  const forms = (['header', 'query', 'responseHeader', 'response'] as const).filter((k) => o[k] !== undefined);
  if (forms.length !== 1) throw new SluiceConfigError(field, 'give exactly one of header, query, responseHeader (or, in code, response)');
  const form = forms[0] as (typeof forms)[number];
  if (form === 'header' || form === 'query') {
    onlyKeys(o, [form, 'max'], field);
    const max = integerIn(o.max, `${field}.max`, 1);
    if (form === 'header') {
      if (typeof o.header !== 'string' || !HEADER_NAME.test(o.header)) throw new SluiceConfigError(`${field}.header`, `must be a valid HTTP header name, got ${describe(o.header)}`);
      const name = o.header.toLowerCase();
      const what = `header ${name}`;
      return { kind: 'request', of: (req) => clientCost(req.headers[name], what, max) };
    }
    if (typeof o.query !== 'string' || o.query.length === 0 || o.query.length > 100) throw new SluiceConfigError(`${field}.query`, `must be a query parameter name (1-100 characters), got ${describe(o.query)}`);
    const name = o.query;
    const what = `query parameter ${name}`;
    return {
      kind: 'request',
      of: (req) => {
        const all = queryValues(req, name);
        return clientCost(all.length === 0 ? undefined : all.length === 1 ? all[0] : all, what, max);
      },
    };
  }
  onlyKeys(o, [form, 'max', 'reserve'], field);
  const max = integerIn(o.max, `${field}.max`, 1);
  const reserve = o.reserve === undefined ? 1 : integerIn(o.reserve, `${field}.reserve`, 0);
  if (reserve > max) throw new SluiceConfigError(`${field}.reserve`, `must not exceed max (${max}), got ${reserve}`);
  if (form === 'responseHeader') {
    if (typeof o.responseHeader !== 'string' || !HEADER_NAME.test(o.responseHeader)) {
      throw new SluiceConfigError(`${field}.responseHeader`, `must be a valid HTTP header name, got ${describe(o.responseHeader)}`);
    }
    const name = o.responseHeader.toLowerCase();
    return {
      kind: 'response',
      reserve,
      max,
      of: (res) => {
        const v = res.header(name);
        if (v === undefined) return reserve;
        const n = decimal(v);
        return n === undefined || n > max ? max : n;
      },
    };
  }
  if (typeof o.response !== 'function') throw new SluiceConfigError(`${field}.response`, `must be a function of the response, got ${describe(o.response)}`);
  const fn = o.response as CostFromResponse['response'];
  return {
    kind: 'response',
    reserve,
    max,
    of: (res, req) => {
      let n: unknown;
      try {
        n = fn(res, req);
      } catch {
        return max;
      }
      return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= max ? n : max;
    },
  };
}

/** The units to charge when the response arrives, on top of the reserve already decided. */
export function responseExtra(cost: Extract<CompiledCost, { kind: 'response' }>, response: HttpResponseInfo, request: HttpRequestInfo): number {
  const real = cost.of(response, request);
  return real > cost.reserve ? real - cost.reserve : 0;
}

/** A header reader over a lower-cased header record (Node's `getHeaders()`, undici's response headers). */
export function headerReader(headers: Record<string, string | string[] | number | undefined>): (name: string) => string | undefined {
  return (name) => {
    const v = headers[name];
    if (v === undefined) return undefined;
    return Array.isArray(v) ? v.join(', ') : String(v);
  };
}
