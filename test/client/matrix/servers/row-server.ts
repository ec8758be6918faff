/**
 * What every server of the client conformance matrix exposes: where it listens, what it answered
 * (counted on the server side, so a client's own bookkeeping cannot hide a 429), the allowed rate,
 * and the least time a perfect client needs for n calls (the yardstick of "share of the allowed rate").
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Responses a server sent, by class. */
export interface ServerCounts {
  ok: number;
  r429: number;
  /** Anything else (4xx/5xx other than 429): a row counting these is misconfigured or the client is. */
  other: number;
  /** 429s per rate-limit group, where the server knows its groups. */
  r429ByGroup?: Record<string, number>;
}

export interface RowServer {
  url: string;
  counts(): Promise<ServerCounts>;
  /** Least time (ms) a client that knew the limit exactly would need for `n` accepted calls, from now. */
  idealMs(n: number): number;
  /** Calls per second the server admits in the long run. */
  ratePerSec: number;
  close(): Promise<void>;
}

/** Count every response a node:http server finishes (its status as sent on the wire). */
export function countResponses(server: Server): () => Promise<ServerCounts> {
  const c: ServerCounts = { ok: 0, r429: 0, other: 0 };
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    res.on('finish', () => {
      if (res.statusCode >= 200 && res.statusCode < 300) c.ok++;
      else if (res.statusCode === 429) c.r429++;
      else c.other++;
    });
  });
  return async () => ({ ...c });
}

export const listenLoopback = (server: Server): Promise<string> =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });

export const closeServer = (server: Server): Promise<void> =>
  new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

/** Fixed or sliding window of `limit` per `windowMs` from a fresh start: the (n-1)th call waits whole windows. */
export const windowIdealMs = (limit: number, windowMs: number) => (n: number) => Math.floor(Math.max(0, n - 1) / limit) * windowMs;
