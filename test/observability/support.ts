/** Fixtures for the observability specs: events, a loopback "gateway" that emits them, a line sink. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { combine, type Decision } from '../../src/core/decision.js';
import { createLimiter } from '../../src/index.js';
import type { RequestEvent } from '../../src/observability/events.js';
import { createObservabilityRoutes } from '../../src/observability/admin-routes.js';
import type { Observer } from '../../src/observability/observer.js';

export const TOKEN = 'test-admin-token-0123456789';

/** A decision for one rule with `limit` and `remaining`. */
export function decision(opts: { key?: string; policy?: string; limit?: number; remaining?: number; allowed?: boolean; windowMs?: number }): Decision {
  const limit = opts.limit ?? 10;
  const allowed = opts.allowed ?? true;
  return combine(opts.key ?? 'k', 1, [
    {
      policy: opts.policy ?? 'per-minute',
      allowed,
      limit,
      remaining: allowed ? (opts.remaining ?? limit - 1) : 0,
      resetMs: 1000,
      retryAfterMs: allowed ? 0 : 1000,
      windowMs: opts.windowMs ?? 60_000,
    },
  ]);
}

let seq = 0;
/** A request event; `limited: true` makes it a 429. */
export function event(over: Partial<RequestEvent> & { limited?: boolean } = {}): RequestEvent {
  const limited = over.limited ?? false;
  const { limited: _l, ...rest } = over;
  return {
    time: Date.now(),
    requestId: `req-${++seq}`,
    route: 'orders',
    method: 'GET',
    path: '/v1/orders',
    status: limited ? 429 : 200,
    consumer: 'alice',
    key: 'user:alice',
    ip: '203.0.113.7',
    policy: 'per-minute',
    allowed: !limited,
    durationMs: 1.5,
    ...rest,
  };
}

/** A writable that collects complete lines. */
export function lineSink(): { stream: Writable & { write(s: string): boolean }; lines: string[] } {
  const lines: string[] = [];
  let buf = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      cb();
    },
  });
  return { stream, lines };
}

export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * A minimal stand-in gateway: `GET /api/...` is limited per `x-consumer` header (limit per minute)
 * with the core limiter and reported to the observer; the admin routes answer the rest.
 */
export async function miniGateway(observer: Observer, limit = 3) {
  const limiter = createLimiter({ name: 'per-minute', limit, windowMs: 60_000, algorithm: 'fixed-window' });
  const admin = createObservabilityRoutes({ observer, token: TOKEN });
  return listen((req, res) => {
    void (async () => {
      if (await admin(req, res)) return;
      if (!req.url?.startsWith('/api/')) {
        res.writeHead(404).end();
        return;
      }
      const started = performance.now();
      const consumer = String(req.headers['x-consumer'] ?? 'anonymous');
      const t0 = performance.now();
      const d = await limiter.consume(`user:${consumer}`);
      const storeLatencyMs = performance.now() - t0;
      const status = d.allowed ? 200 : 429;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(d.allowed ? 'ok' : 'slow down');
      observer.record({
        time: Date.now(),
        requestId: `r-${Math.random().toString(36).slice(2)}`,
        route: 'api',
        method: req.method ?? 'GET',
        path: (req.url ?? '/').split('?')[0]!,
        status,
        consumer,
        key: `user:${consumer}`,
        ip: req.socket.remoteAddress ?? '',
        policy: d.policy,
        decision: d,
        allowed: d.allowed,
        durationMs: performance.now() - started,
        storeLatencyMs,
      });
    })();
  });
}
