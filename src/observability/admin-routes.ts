/**
 * The observability half of the admin side, as a plain node:http handler the gateway's admin
 * server delegates to:
 *
 * - `GET /metrics`: Prometheus exposition.
 * - `GET /analytics/summary?window=5m|1h|24h&top=10`: calls by route and status, top throttled
 *   consumers and IPs, consumers close to their limit.
 * - `GET /analytics/live?seconds=60`: per-second requests and 429s.
 * - `GET /analytics/consumers/<id>?window=…`: one consumer's drill-down.
 * - `GET /dashboard`: the HTML dashboard.
 *
 * Every route requires the admin token: `Authorization: Bearer <token>` (compared in constant
 * time), or the dashboard session cookie. A browser opens `/dashboard?token=<token>` once: the
 * answer sets an HttpOnly, SameSite=Strict cookie holding an HMAC of the token (never the token)
 * and redirects to `/dashboard`, so the token leaves the address bar and history.
 */
import { createHmac } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SluiceConfigError } from '../core/errors.js';
import { bearerToken } from '../http/bearer.js';
import { hasAdminToken, safeEqual, sendAdminProblem, sendAdminUnauthorized } from './admin-auth.js';
import { parseWindow } from './analytics.js';
import { DASHBOARD_CSP, DASHBOARD_HTML } from './dashboard/page.js';
import type { Observer } from './observer.js';

/** Options of {@link createObservabilityRoutes}. */
export interface ObservabilityRoutesOptions {
  observer: Observer;
  /** The admin token (at least 16 characters). */
  token: string;
  /** Path prefix the routes live under (e.g. `/admin`). Default: none. */
  prefix?: string;
}

/** Handles a request if its path is one of ours (resolves true), else resolves false untouched. */
export type AdminHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

const COOKIE = 'sluice_admin';
/** Answer with a problem body (titles come from the one table in src/http/problem.ts). */
function problem(res: ServerResponse, status: number, detail: string, extra: Record<string, string> = {}): void {
  sendAdminProblem(res, status, detail, extra);
}

function json(res: ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

/** Build the handler. Options are validated here. */
export function createObservabilityRoutes(options: ObservabilityRoutesOptions): AdminHandler {
  const { observer } = options;
  if (typeof observer?.record !== 'function') throw new SluiceConfigError('observer', 'must be an Observer from createObserver()');
  const token = options.token;
  if (typeof token !== 'string' || token.length < 16) throw new SluiceConfigError('adminToken', 'must be a string of at least 16 characters');
  const prefix = (options.prefix ?? '').replace(/\/+$/, '');
  if (prefix !== '' && !prefix.startsWith('/')) throw new SluiceConfigError('prefix', `must start with "/", got ${JSON.stringify(prefix)}`);
  const session = createHmac('sha256', token).update('sluice-dashboard-session').digest('base64url');

  const authorized = (req: IncomingMessage): boolean => {
    if (bearerToken(req.headers.authorization) !== undefined) return hasAdminToken(req, token);
    const cookie = req.headers.cookie;
    if (typeof cookie === 'string') {
      for (const part of cookie.split(';')) {
        const i = part.indexOf('=');
        if (i > 0 && part.slice(0, i).trim() === COOKIE) return safeEqual(part.slice(i + 1).trim(), session);
      }
    }
    return false;
  };

  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    let path = url.pathname;
    if (prefix) {
      if (path !== prefix && !path.startsWith(`${prefix}/`)) return false;
      path = path.slice(prefix.length) || '/';
    }
    const ours = path === '/metrics' || path === '/dashboard' || path === '/analytics' || path.startsWith('/analytics/');
    if (!ours) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      problem(res, 405, `${path} only answers GET`, { allow: 'GET, HEAD' });
      return true;
    }
    if (!authorized(req)) {
      // The one-time browser login: /dashboard?token=… swaps the token for a session cookie.
      const given = url.searchParams.get('token');
      if (path === '/dashboard' && given !== null && safeEqual(given, token)) {
        res.writeHead(303, {
          location: `${prefix}/dashboard`,
          'set-cookie': `${COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=${prefix || '/'}`,
          'cache-control': 'no-store',
          'referrer-policy': 'no-referrer',
        });
        res.end();
        return true;
      }
      sendAdminUnauthorized(res);
      return true;
    }
    try {
      if (path === '/metrics') {
        const text = await observer.metrics.text();
        res.writeHead(200, { 'content-type': observer.metrics.registry.contentType, 'cache-control': 'no-store' });
        res.end(text);
      } else if (path === '/dashboard') {
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': DASHBOARD_CSP,
          'x-content-type-options': 'nosniff',
          'referrer-policy': 'no-referrer',
          'cache-control': 'no-store',
        });
        res.end(DASHBOARD_HTML);
      } else if (path === '/analytics/summary') {
        const top = Number(url.searchParams.get('top') ?? 10);
        if (!Number.isInteger(top) || top < 1 || top > 1000) {
          problem(res, 400, 'top must be an integer from 1 to 1000');
          return true;
        }
        json(res, await observer.analytics.summary(parseWindow(url.searchParams.get('window') ?? '5m'), { top }));
      } else if (path === '/analytics/live') {
        const seconds = Number(url.searchParams.get('seconds') ?? 60);
        if (!Number.isInteger(seconds) || seconds < 1 || seconds > 300) {
          problem(res, 400, 'seconds must be an integer from 1 to 300');
          return true;
        }
        json(res, await observer.analytics.live(seconds));
      } else if (path.startsWith('/analytics/consumers/') && path.length > '/analytics/consumers/'.length) {
        let id: string;
        try {
          id = decodeURIComponent(path.slice('/analytics/consumers/'.length));
        } catch {
          problem(res, 400, 'consumer id is not valid percent-encoding');
          return true;
        }
        json(res, await observer.analytics.consumer(id, parseWindow(url.searchParams.get('window') ?? '5m')));
      } else {
        problem(res, 404, `no admin route ${path}`);
      }
    } catch (err) {
      if (err instanceof SluiceConfigError) problem(res, 400, err.message);
      else problem(res, 503, 'analytics store unavailable');
    }
    return true;
  };
}
