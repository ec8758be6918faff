/**
 * Custom refusals: per policy, the status of a refusal (429 by default, or 503), its `detail`
 * text, extra response headers, and in code a `handler` that may replace the response. The body
 * stays RFC 9457 Problem Details unless a handler replaces it.
 */
import type { Decision } from '../core/decision.js';
import { SluiceConfigError } from '../core/errors.js';
import { describe } from '../core/rule.js';
import type { HttpRequestInfo } from './request.js';

/** What a refusal handler may change: status, extra headers, or the whole body. */
export interface RefusalResponse {
  status?: number;
  /** Added to (or replacing) the response headers, lower-case names. */
  headers?: Record<string, string>;
  /** Replaces the Problem Details body (set `content-type` in `headers` to match). */
  body?: string;
}

/** What a refusal handler is given: the refusal Sluice would send. */
export interface Refusal {
  readonly request: HttpRequestInfo;
  readonly policy: string;
  readonly decision: Decision | undefined;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** The RFC 9457 body. */
  readonly body: string;
}

/** A refusal handler (library only). Returns changes, or nothing to send the refusal as is. Must be synchronous. */
export type RefusalHandler = (refusal: Refusal) => RefusalResponse | undefined | void;

/** The refusal options of a policy. */
export interface RefusalOptions {
  /** Status of a refusal by this policy: 429 (default) or 503. */
  statusCode?: 429 | 503;
  /** The Problem Details `detail` of a refusal by this policy. */
  detail?: string;
  /** Extra headers on a refusal by this policy (not the ones Sluice sets itself). */
  headers?: Record<string, string>;
  /** Library only: change or replace the refusal. A handler that throws leaves the refusal as is. */
  handler?: RefusalHandler;
}

/** A policy's refusal settings, validated. */
export interface CompiledRefusal {
  readonly statusCode: number;
  readonly detail: string | undefined;
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly handler: RefusalHandler | undefined;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$/;
/** Headers Sluice writes itself: a policy may not set them. */
const RESERVED = /^(content-type|content-length|retry-after|ratelimit|ratelimit-policy|x-ratelimit-.*|x-request-id|transfer-encoding|connection)$/;

/** Validate the refusal options; undefined when the policy uses the defaults. */
export function compileRefusal(o: RefusalOptions, at: (f: string) => string): CompiledRefusal | undefined {
  if (o.statusCode === undefined && o.detail === undefined && o.headers === undefined && o.handler === undefined) return undefined;
  const statusCode = o.statusCode ?? 429;
  if (statusCode !== 429 && statusCode !== 503) throw new SluiceConfigError(at('statusCode'), `must be 429 or 503, got ${describe(statusCode)}`);
  if (o.detail !== undefined && (typeof o.detail !== 'string' || o.detail.length === 0 || o.detail.length > 500)) {
    throw new SluiceConfigError(at('detail'), `must be a non-empty string of at most 500 characters, got ${describe(o.detail)}`);
  }
  let headers: Record<string, string> | undefined;
  if (o.headers !== undefined) {
    if (o.headers === null || typeof o.headers !== 'object' || Array.isArray(o.headers)) throw new SluiceConfigError(at('headers'), 'must be an object of header names to values');
    headers = {};
    for (const [name, value] of Object.entries(o.headers)) {
      const lower = name.toLowerCase();
      if (!TOKEN.test(name)) throw new SluiceConfigError(at(`headers.${name.slice(0, 40)}`), 'is not a valid header name');
      if (RESERVED.test(lower)) throw new SluiceConfigError(at(`headers.${name}`), 'is set by Sluice itself');
      if (typeof value !== 'string' || value.length > 1000 || /[\r\n\0]/.test(value)) {
        throw new SluiceConfigError(at(`headers.${name}`), 'must be a string of at most 1000 characters without CR, LF or NUL');
      }
      headers[lower] = value;
    }
  }
  if (o.handler !== undefined && typeof o.handler !== 'function') throw new SluiceConfigError(at('handler'), `must be a function, got ${describe(o.handler)}`);
  return { statusCode, detail: o.detail, headers, handler: o.handler };
}

/** Apply a handler's changes (a throwing or odd handler changes nothing: the refusal is sent as is). */
export function applyHandler(handler: RefusalHandler, refusal: Refusal): RefusalResponse | undefined {
  let r: RefusalResponse | undefined | void;
  try {
    r = handler(refusal);
  } catch {
    return undefined;
  }
  if (r === undefined || r === null || typeof r !== 'object') return undefined;
  const out: RefusalResponse = {};
  if (typeof r.status === 'number' && Number.isInteger(r.status) && r.status >= 400 && r.status <= 599) out.status = r.status;
  if (typeof r.body === 'string') out.body = r.body;
  if (r.headers !== undefined && typeof r.headers === 'object') {
    out.headers = {};
    for (const [k, v] of Object.entries(r.headers)) if (TOKEN.test(k) && typeof v === 'string' && !/[\r\n\0]/.test(v)) out.headers[k.toLowerCase()] = v;
  }
  return out;
}
