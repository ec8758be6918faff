/**
 * A strict rate-limited API for client tests and the client benchmark, on loopback.
 *
 * Penalty box (RingCentral's model): each group counts accepted requests in an exact sliding window;
 * the request over the limit is refused and starts a penalty, and EVERY request arriving during the
 * penalty is refused and restarts it. A client that keeps sending while throttled never gets out.
 *
 * Header styles: IETF draft-10 `RateLimit`/`RateLimit-Policy`, `X-RateLimit-*` (reset in epoch s),
 * RingCentral `X-Rate-Limit-Group/-Limit/-Remaining/-Window`, or none; `Retry-After` as seconds,
 * an HTTP date, or absent. A token endpoint (`POST /oauth/token`) issues tokens or answers
 * 400 `invalid_grant`; hooks inject failures and hostile headers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StrictGroup {
  name: string;
  limit: number;
  windowMs: number;
  /** Penalty after exceeding, restarted by every request during it. Default: windowMs. */
  penaltyMs?: number;
  /** Path prefix (or predicate) of the group's endpoints. */
  match: string | ((method: string, path: string) => boolean);
  /** Count in fixed windows from the server's start instead of a sliding window. */
  fixed?: boolean;
}

export type HeaderStyle = 'ietf' | 'x-ratelimit' | 'x-ratelimit-delta' | 'ringcentral' | 'none';

export interface StrictServerOptions {
  groups: StrictGroup[];
  headers?: HeaderStyle;
  retryAfter?: 'seconds' | 'date' | 'none';
  /** Token endpoint behaviour. Default 'ok'. */
  token?: { behaviour?: 'ok' | 'invalid_grant'; expiresIn?: number; accessToken?: string };
  /** Require `Authorization: Bearer <issued token>` on API calls (401 otherwise). */
  requireAuth?: boolean;
  /** Simulated processing time per request. */
  latencyMs?: number;
  /** Override/add response headers (hostile values); return undefined to keep the normal ones. */
  headerHook?: (req: IncomingMessage, status: number) => Record<string, string> | undefined;
  /** Fail a request before rate limiting: a status, 'drop' (destroy the socket), or undefined. */
  failHook?: (req: IncomingMessage, n: number) => number | 'drop' | undefined;
}

export interface GroupStats {
  ok: number;
  rejected: number;
  /** Requests that arrived during a penalty (each restarted it). */
  penaltyRestarts: number;
  /** Arrival times (performance.now ms) of accepted requests. */
  accepted: number[];
  /** Arrival times of 429s. */
  rejectedAt: number[];
}

export interface StrictServer {
  url: string;
  port: number;
  server: Server;
  groups: Record<string, GroupStats>;
  tokenRequests: number;
  tokenGrants: string[];
  requests: number;
  unauthorized: number;
  /** Largest number of accepted requests seen in any window, per group (must stay <= limit). */
  maxInWindow(group: string): number;
  total429(): number;
  close(): Promise<void>;
}

interface Box {
  log: number[];
  penaltyUntil: number;
}

export async function startStrictServer(o: StrictServerOptions, port = 0): Promise<StrictServer> {
  const style = o.headers ?? 'ringcentral';
  const boxes = new Map<string, Box>();
  const issued = new Set<string>();
  let tokenSeq = 0;
  const groups: Record<string, GroupStats> = {};
  for (const g of o.groups) groups[g.name] = { ok: 0, rejected: 0, penaltyRestarts: 0, accepted: [], rejectedAt: [] };
  const started = performance.now();
  const state = { tokenRequests: 0, requests: 0, unauthorized: 0, tokenGrants: [] as string[] };

  const groupOf = (method: string, path: string): StrictGroup | undefined =>
    o.groups.find((g) => (typeof g.match === 'string' ? path.startsWith(g.match) : g.match(method, path)));

  const send = (req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string>, body: string) => {
    const hook = o.headerHook?.(req, status);
    const all = { 'content-type': 'application/json', ...headers, ...(hook ?? {}) };
    const go = () => {
      if (res.destroyed) return;
      res.writeHead(status, all);
      res.end(body);
    };
    if (o.latencyMs) setTimeout(go, o.latencyMs);
    else go();
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const method = req.method ?? 'GET';
      if (url.pathname === '/oauth/token' && method === 'POST') {
        state.tokenRequests++;
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        state.tokenGrants.push(form.get('grant_type') ?? '');
        if ((o.token?.behaviour ?? 'ok') === 'invalid_grant') {
          return send(req, res, 400, {}, JSON.stringify({ error: 'invalid_grant', error_description: 'Invalid resource owner credentials' }));
        }
        const t = o.token?.accessToken ?? `tok-${++tokenSeq}`;
        issued.add(t);
        return send(req, res, 200, {}, JSON.stringify({
          access_token: t,
          token_type: 'bearer',
          expires_in: o.token?.expiresIn ?? 3600,
          refresh_token: `ref-${tokenSeq}`,
          refresh_token_expires_in: 604800,
        }));
      }
      state.requests++;
      const fail = o.failHook?.(req, state.requests);
      if (fail === 'drop') {
        req.socket.destroy();
        return;
      }
      if (typeof fail === 'number') return send(req, res, fail, {}, JSON.stringify({ error: `injected ${fail}` }));
      const auth = req.headers.authorization ?? '';
      if (o.requireAuth && !issued.has(auth.replace(/^Bearer /, ''))) {
        state.unauthorized++;
        return send(req, res, 401, {}, JSON.stringify({ error: 'invalid_token' }));
      }
      const g = groupOf(method, url.pathname);
      if (g === undefined) return send(req, res, 200, {}, '{"ok":true}');
      const stats = groups[g.name] as GroupStats;
      const boxKey = `${g.name}|${auth}`;
      let box = boxes.get(boxKey);
      if (box === undefined) boxes.set(boxKey, (box = { log: [], penaltyUntil: 0 }));
      const now = performance.now();
      const penalty = g.penaltyMs ?? g.windowMs;
      if (g.fixed) {
        const start = now - (now - started) % g.windowMs;
        while (box.log.length > 0 && (box.log[0] as number) < start) box.log.shift();
      } else while (box.log.length > 0 && (box.log[0] as number) + g.windowMs <= now) box.log.shift();
      const winS = Math.max(1, Math.ceil(g.windowMs / 1000));
      const headers: Record<string, string> = {};
      const describe = (remaining: number) => {
        const resetMs = g.fixed ? g.windowMs - ((now - started) % g.windowMs) : box.log.length > 0 ? (box.log[0] as number) + g.windowMs - now : 0;
        if (style === 'ringcentral') {
          headers['x-rate-limit-group'] = g.name;
          headers['x-rate-limit-limit'] = String(g.limit);
          headers['x-rate-limit-remaining'] = String(remaining);
          headers['x-rate-limit-window'] = String(winS);
        } else if (style === 'ietf') {
          headers['ratelimit-policy'] = `"${g.name}";q=${g.limit};w=${winS}`;
          headers['ratelimit'] = `"${g.name}";r=${remaining};t=${Math.ceil(resetMs / 1000)}`;
        } else if (style === 'x-ratelimit') {
          headers['x-ratelimit-limit'] = String(g.limit);
          headers['x-ratelimit-remaining'] = String(remaining);
          headers['x-ratelimit-reset'] = String(Math.ceil((Date.now() + resetMs) / 1000));
        } else if (style === 'x-ratelimit-delta') {
          headers['x-ratelimit-limit'] = String(g.limit);
          headers['x-ratelimit-remaining'] = String(remaining);
          headers['x-ratelimit-reset'] = String(Math.ceil(resetMs / 1000));
        }
      };
      const reject = () => {
        stats.rejected++;
        stats.rejectedAt.push(now);
        box.penaltyUntil = now + penalty;
        describe(0);
        const ra = o.retryAfter ?? 'seconds';
        if (ra === 'seconds') headers['retry-after'] = String(Math.ceil(penalty / 1000));
        else if (ra === 'date') headers['retry-after'] = new Date(Date.now() + penalty + 1000).toUTCString();
        send(req, res, 429, headers, JSON.stringify({ errorCode: 'CMN-301', message: 'Request rate exceeded' }));
      };
      if (now < box.penaltyUntil) {
        stats.penaltyRestarts++;
        return reject();
      }
      if (box.log.length >= g.limit) return reject();
      box.log.push(now);
      stats.ok++;
      stats.accepted.push(now);
      describe(g.limit - box.log.length);
      send(req, res, 200, headers, JSON.stringify({ ok: true, group: g.name }));
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const p = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${p}`,
    port: p,
    server,
    groups,
    get tokenRequests() {
      return state.tokenRequests;
    },
    get tokenGrants() {
      return state.tokenGrants;
    },
    get requests() {
      return state.requests;
    },
    get unauthorized() {
      return state.unauthorized;
    },
    maxInWindow(name) {
      const g = o.groups.find((x) => x.name === name);
      const a = groups[name]?.accepted ?? [];
      if (g === undefined) return 0;
      let max = 0;
      let j = 0;
      for (let i = 0; i < a.length; i++) {
        while ((a[j] as number) + g.windowMs <= (a[i] as number)) j++;
        max = Math.max(max, i - j + 1);
      }
      return max;
    },
    total429() {
      return Object.values(groups).reduce((s, g) => s + g.rejected, 0);
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
