/**
 * nginx `limit_req` without `burst`, on loopback, for client specs: the same leaky bucket
 * (ngx_http_limit_req_module: excess = max(0, excess - rate * elapsed + 1), refused when above the
 * burst, here 0), so any request closer than 1/rate to the last accepted one is refused with a
 * bare 429 (optionally with `Retry-After`). Refused requests do not count, as in nginx.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LeakyServer {
  url: string;
  accepted: number;
  refused: number;
  close(): Promise<void>;
}

export async function startLeakyServer(o: { ratePerSecond: number; retryAfter?: string }): Promise<LeakyServer> {
  let excess = 0;
  let last: number | undefined;
  const stats = { accepted: 0, refused: 0 };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const now = performance.now();
      const e = last === undefined ? 0 : Math.max(0, excess - (o.ratePerSecond * (now - last)) / 1000 + 1);
      if (e > 0) {
        stats.refused++;
        res.writeHead(429, o.retryAfter === undefined ? {} : { 'retry-after': o.retryAfter });
        res.end('<html>429 Too Many Requests</html>');
        return;
      }
      excess = e;
      last = now;
      stats.accepted++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get accepted() {
      return stats.accepted;
    },
    get refused() {
      return stats.refused;
    },
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}
