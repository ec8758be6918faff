/**
 * The one admin check and the one admin error writer, shared by the observability routes
 * (`/metrics`, `/analytics/*`, `/dashboard`) and the gateway's admin API (`/consumers`, `/reload`):
 * the same `Authorization` header gets the same answer on every admin route.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerToken } from '../http/bearer.js';
import { PROBLEM_CONTENT_TYPE, shortProblemBody } from '../http/problem.js';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison of two strings (through fixed-length digests: neither content nor length leaks). */
export function safeEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** Does the request carry `Authorization: Bearer <token>` with the admin token? An empty expected token matches nothing. */
export function hasAdminToken(req: IncomingMessage, token: string): boolean {
  const given = bearerToken(req.headers.authorization);
  return given !== undefined && token.length > 0 && safeEqual(given, token);
}

/** Answer an admin request with a problem+json body (`type`, `title`, `status`, `detail`). */
export function sendAdminProblem(res: ServerResponse, status: number, detail: string, extra: Record<string, string> = {}): void {
  const body = shortProblemBody(status, detail);
  res.writeHead(status, { 'content-type': PROBLEM_CONTENT_TYPE, 'cache-control': 'no-store', ...extra });
  res.end(body);
}

/** The 401 every admin route sends without a valid token. */
export function sendAdminUnauthorized(res: ServerResponse): void {
  sendAdminProblem(res, 401, 'a valid admin token is required (Authorization: Bearer <token>)', { 'www-authenticate': 'Bearer realm="sluice-admin"' });
}
