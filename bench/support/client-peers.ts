/**
 * The client benchmark's peers, each used the way its documentation and common practice suggest,
 * as matrix contenders (test/client/matrix/run-row.ts):
 *
 * - Bottleneck 2: `reservoir` = the documented limit, refreshed every window (its way to say "N per
 *   window"), `maxConcurrent` 16; a 429 is retried after `Retry-After` (1 s when absent) through
 *   the `failed` event, octokit's pattern.
 * - p-queue 9: `intervalCap` = the documented limit per `interval`, `strict: true`, concurrency 16;
 *   a 429 re-queues the call after `Retry-After` (1 s when absent).
 * - ky 1 and got 14: no pacing (they know no limits), 16 calls at a time, their own retry of 429
 *   (`Retry-After` honoured, their exponential backoff otherwise), 10 retries.
 *
 * Bottleneck and p-queue are told the server's documented limit; Sluice is not (it runs unconfigured).
 */
import Bottleneck from 'bottleneck';
import got, { HTTPError as GotHTTPError } from 'got';
import ky, { HTTPError as KyHTTPError } from 'ky';
import PQueue from 'p-queue';
import type { Contender } from '../../test/client/matrix/run-row.js';

const CONCURRENCY = 16;
const RETRIES = 10;

/** What a peer's user writes to read `Retry-After`: seconds (decimals too) or a date; 1 s when absent. */
function retryAfterMs(res: Response): number {
  const v = res.headers.get('retry-after');
  if (v === null) return 1000;
  const s = Number(v);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const d = Date.parse(v);
  return Number.isNaN(d) ? 1000 : Math.max(0, d - Date.now());
}

const errorName = (e: unknown) => (e instanceof Error ? e.name : 'Error');

class RateLimited extends Error {
  constructor(readonly retryAfterMs: number) {
    super('429');
  }
}

export const bottleneck =
  (limit: number, windowMs: number): Contender =>
  async ({ baseUrl, paths, signal, settle }) => {
    const limiter = new Bottleneck({ reservoir: limit, reservoirRefreshAmount: limit, reservoirRefreshInterval: windowMs, maxConcurrent: CONCURRENCY });
    limiter.on('failed', (err: unknown, info) => (err instanceof RateLimited && info.retryCount < RETRIES ? err.retryAfterMs : undefined));
    paths.forEach((path, i) => {
      limiter
        .schedule(async () => {
          const res = await fetch(baseUrl + path, { signal });
          await res.arrayBuffer();
          if (res.status === 429) throw new RateLimited(retryAfterMs(res));
          return res.status;
        })
        .then(
          (status) => settle(i, String(status)),
          (e: unknown) => settle(i, e instanceof RateLimited ? '429' : errorName(e)),
        );
    });
    // stop() waits for running jobs; the run is over, so do not wait long for stragglers.
    return () => Promise.race([limiter.stop({ dropWaitingJobs: true }).catch(() => undefined), new Promise<void>((r) => setTimeout(r, 1000))]);
  };

export const pQueue =
  (limit: number, windowMs: number): Contender =>
  async ({ baseUrl, paths, signal, settle }) => {
    const queue = new PQueue({ concurrency: CONCURRENCY, intervalCap: limit, interval: windowMs, strict: true });
    const timers = new Set<NodeJS.Timeout>();
    const job = (i: number, attempt: number): void => {
      queue
        .add(async () => {
          const res = await fetch(baseUrl + (paths[i] as string), { signal });
          await res.arrayBuffer();
          if (res.status === 429 && attempt < RETRIES) {
            const t = setTimeout(() => (timers.delete(t), job(i, attempt + 1)), retryAfterMs(res));
            timers.add(t);
          } else settle(i, String(res.status));
        })
        .catch((e: unknown) => settle(i, errorName(e)));
    };
    paths.forEach((_, i) => job(i, 0));
    return async () => {
      for (const t of timers) clearTimeout(t);
      queue.clear();
    };
  };

/** `CONCURRENCY` workers taking the next call: how an app without a limiter bounds its fan-out. */
function workers(paths: string[], signal: AbortSignal, call: (i: number) => Promise<void>): void {
  let next = 0;
  for (let w = 0; w < CONCURRENCY; w++) {
    void (async () => {
      while (next < paths.length && !signal.aborted) await call(next++);
    })();
  }
}

export const kyRetry: Contender = async ({ baseUrl, paths, signal, settle }) => {
  const api = ky.create({
    prefixUrl: baseUrl,
    timeout: false,
    signal,
    retry: { limit: RETRIES, statusCodes: [429], afterStatusCodes: [429] },
  });
  workers(paths, signal, async (i) => {
    try {
      const res = await api.get((paths[i] as string).slice(1));
      await res.arrayBuffer();
      settle(i, String(res.status));
    } catch (e) {
      settle(i, e instanceof KyHTTPError ? String(e.response.status) : errorName(e));
    }
  });
  return async () => undefined;
};

export const gotRetry: Contender = async ({ baseUrl, paths, signal, settle }) => {
  workers(paths, signal, async (i) => {
    try {
      const res = await got(baseUrl + (paths[i] as string), { signal, retry: { limit: RETRIES, statusCodes: [429], methods: ['GET'] } });
      settle(i, String(res.statusCode));
    } catch (e) {
      settle(i, e instanceof GotHTTPError ? String(e.response.statusCode) : errorName(e));
    }
  });
  return async () => undefined;
};
