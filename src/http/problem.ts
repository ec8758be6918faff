/**
 * RFC 9457 Problem Details bodies, in the exact shape Zuplo documents for its 429
 * (`type` on httpproblems.com, `title`, `status`, `detail`, `instance` = request path, and a
 * `trace` object with `requestId`, ISO-8601 `timestamp` and `buildId`).
 */
import { randomRequestId } from './request-id.js';

/** Media type of every problem body. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The one title table (RFC 9110 reason phrases) for every problem body Sluice sends. */
const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The problem `type` URI of a status. */
const typeOf = (status: number) => `https://httpproblems.com/http-status/${status}`;

/** The standard detail strings, one per reason the HTTP layer refuses a request. */
export const DETAILS = {
  rateLimited: 'Rate limit exceeded',
  storeUnavailable: 'Rate limit service unavailable',
  denied: 'Request denied by policy',
  unidentified: 'Request could not be identified for rate limiting',
} as const;

/** The `trace` member. */
export interface ProblemTrace {
  requestId: string;
  /** ISO 8601, e.g. `2026-04-14T12:00:00.000Z`. */
  timestamp: string;
  buildId: string;
}

/** A problem document as Sluice sends it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  trace: ProblemTrace;
}

/** Build the problem document for `status` (the `type` URI is `https://httpproblems.com/http-status/<status>`). */
export function problem(status: number, detail: string, instance: string, trace: ProblemTrace): Problem {
  return {
    type: typeOf(status),
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    instance,
    trace,
  };
}

/** Serialised as Zuplo does: JSON with 2-space indentation. */
export function problemBody(p: Problem): string {
  return JSON.stringify(p, null, 2);
}

/** A problem body without `instance` and `trace`, for admin APIs (compact JSON). */
export function shortProblemBody(status: number, detail: string): string {
  return JSON.stringify({ type: typeOf(status), title: TITLES[status] ?? 'Error', status, detail });
}

/** Longest incoming `x-request-id` we echo. */
export const MAX_REQUEST_ID_LENGTH = 128;
const SANE_ID = /^[A-Za-z0-9._:+=@\/-]+$/;

/**
 * The request id: a sane incoming `x-request-id` (1-128 characters of `A-Z a-z 0-9 . _ : + = @ / -`,
 * so it is safe in headers, logs and JSON), otherwise a fresh UUID v4.
 */
export function requestIdOf(incoming: string | string[] | undefined): string {
  const v = typeof incoming === 'string' ? incoming : incoming?.[0];
  if (v !== undefined && v.length > 0 && v.length <= MAX_REQUEST_ID_LENGTH && SANE_ID.test(v)) return v;
  return randomRequestId();
}
