/**
 * The rows of the client conformance matrix: servers we did not write (nginx, express-rate-limit,
 * @fastify/rate-limit), Sluice's gateway, and local servers answering in the dialects of well-known
 * APIs. Shared by the specs (test/client/matrix/*.test.ts) and the benchmark (bench/suites/client.ts).
 *
 * Two kinds, each with the issue's targets (issue 9):
 * - `quota`: the server sends quota headers. All calls succeed; at most one 429 per group.
 * - `blind`: no quota headers (nothing, or only `Retry-After`). All calls succeed; 429s at most 5 %
 *   of the requests sent.
 *
 * Sizes are small on purpose (1 s windows, a few dozen calls) so a row takes seconds.
 */
import { fixedWindow, leakyBucket, slidingLog } from './servers/limiters.js';
import { startDialectServer } from './servers/dialects.js';
import { startExpressRateLimit, startFastifyRateLimit, startSluiceGateway } from './servers/frameworks.js';
import { startNginx } from './servers/nginx.js';
import type { RowServer } from './servers/row-server.js';

export type RowKind = 'quota' | 'blind';

export interface MatrixRow {
  name: string;
  kind: RowKind;
  /** Calls the spec sends (the benchmark multiplies them). */
  calls: number;
  /** Path prefixes, one per rate-limit group; calls are spread evenly over them. */
  groups: string[];
  /** The limit as the server's documentation states it (what a Bottleneck or p-queue user would configure). */
  documented: { limit: number; windowMs: number };
  /** Blind rows: the form every 429's `Retry-After` has (null: the 429 has none). */
  retryAfter?: RegExp | null;
  start(): Promise<RowServer>;
}

const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

const Q = 5; // quota rows: 5 calls per 1 s
const B = 10; // blind rows: 10 calls per 1 s
const quota = (name: string, start: () => Promise<RowServer>, extra: Partial<MatrixRow> = {}): MatrixRow => ({
  name,
  kind: 'quota',
  calls: 4 * Q,
  groups: ['/'],
  documented: { limit: Q, windowMs: 1000 },
  start,
  ...extra,
});
const blind = (name: string, start: () => Promise<RowServer>, extra: Partial<MatrixRow> = {}): MatrixRow => ({
  name,
  kind: 'blind',
  calls: 4 * B,
  groups: ['/'],
  documented: { limit: B, windowMs: 1000 },
  start,
  ...extra,
});

/** Express 5 + express-rate-limit 8, Fastify 5 + @fastify/rate-limit 11, Sluice's gateway. */
export const frameworkRows: MatrixRow[] = [
  quota('express-rate-limit draft-6 (RateLimit-Limit/-Remaining/-Reset, RateLimit-Policy)', () => startExpressRateLimit('draft-6', Q)),
  quota('express-rate-limit draft-7 (RateLimit: limit=, remaining=, reset=)', () => startExpressRateLimit('draft-7', Q)),
  quota('express-rate-limit draft-8 (RateLimit: "5-in-1sec"; r=; t=)', () => startExpressRateLimit('draft-8', Q)),
  quota('express-rate-limit legacy (X-RateLimit-*, reset in epoch s)', () => startExpressRateLimit('legacy', Q)),
  quota('@fastify/rate-limit default (x-ratelimit-*, reset in s)', () => startFastifyRateLimit(false, Q)),
  quota('@fastify/rate-limit enableDraftSpec (ratelimit-*)', () => startFastifyRateLimit(true, Q)),
  quota('sluice gateway (IETF RateLimit / RateLimit-Policy)', () => startSluiceGateway(Q)),
];

/** Local servers speaking well-known APIs' dialects. */
export const dialectRows: MatrixRow[] = [
  quota('GitHub (x-ratelimit-reset epoch s, quota spent at start, no Retry-After)', () =>
    startDialectServer('github', [{ name: 'core', prefix: '/', limiter: fixedWindow({ limit: Q, windowMs: 1000, align: 'epoch', prespent: true }) }]),
  ),
  quota('Discord (x-ratelimit-reset fractional epoch s, reset-after, bucket)', () =>
    startDialectServer('discord', [{ name: 'bucket', prefix: '/', limiter: fixedWindow({ limit: Q, windowMs: 1000, align: 'first' }) }]),
  ),
  // X's 15-minute windows open at the first call, and its whole-second reset is then exact to 0.1 %. Scaled to
  // 1 s windows, a window opened mid-second would make the rounded reset up to a second late, measuring the
  // rounding instead of the client; windows on whole seconds keep the header as exact as it is at X's scale.
  // (express-rate-limit legacy keeps the rounding: it is not ours to change; see docs/benchmarks.md.)
  quota('X/Twitter (x-rate-limit-reset epoch s, no Retry-After)', () =>
    startDialectServer('twitter', [{ name: 'endpoint', prefix: '/', limiter: fixedWindow({ limit: Q, windowMs: 1000, align: 'epoch' }) }]),
  ),
  quota(
    'Shopify (X-Shopify-Shop-Api-Call-Limit used/capacity, leaky bucket, Retry-After decimal)',
    () => startDialectServer('shopify', [{ name: 'rest', prefix: '/', limiter: leakyBucket({ capacity: 2 * Q, leakPerSec: Q }) }]),
    { calls: 6 * Q, documented: { limit: Q, windowMs: 1000 } },
  ),
  quota(
    'RingCentral (X-Rate-Limit-Group/-Limit/-Remaining/-Window, two groups, penalty box)',
    () =>
      startDialectServer('ringcentral', [
        { name: 'light', prefix: '/light', limiter: slidingLog({ limit: 2 * Q, windowMs: 1000, penaltyMs: 1000 }) },
        { name: 'heavy', prefix: '/heavy', limiter: slidingLog({ limit: Q, windowMs: 1000, penaltyMs: 1000 }) },
      ]),
    { calls: 6 * Q, groups: ['/light', '/heavy'] },
  ),
  quota('penalty box (X-RateLimit-Reset delta s, fixed window, restarts on every request during it)', () =>
    startDialectServer('x-ratelimit-delta', [{ name: 'api', prefix: '/', limiter: fixedWindow({ limit: Q, windowMs: 1000, align: 'first', penaltyMs: 1000 }) }]),
  ),
];

/** Servers that send no quota: nginx, Retry-After alone, nothing at all. */
export const blindRows: MatrixRow[] = [
  blind('nginx limit_req rate=10r/s, no burst (bare 429)', () => startNginx({ ratePerSec: B }), { documented: { limit: 1, windowMs: 1000 / B }, retryAfter: null }),
  blind('nginx limit_req rate=10r/s + Retry-After: 1', () => startNginx({ ratePerSec: B, retryAfterS: 1 }), {
    documented: { limit: 1, windowMs: 1000 / B },
    retryAfter: /^1$/,
  }),
  blind(
    'Retry-After as an HTTP-date (IMF-fixdate) only',
    () => startDialectServer('retry-after-date', [{ name: 'api', prefix: '/', limiter: fixedWindow({ limit: B, windowMs: 1000, align: 'first' }) }]),
    { retryAfter: IMF_FIXDATE },
  ),
  blind(
    'Retry-After as decimal seconds only',
    () => startDialectServer('retry-after-decimal', [{ name: 'api', prefix: '/', limiter: fixedWindow({ limit: B, windowMs: 1000, align: 'first' }) }]),
    { retryAfter: /^\d+\.\d{3}$/ },
  ),
  blind(
    'bare 429, no headers at all',
    () => startDialectServer('bare', [{ name: 'api', prefix: '/', limiter: fixedWindow({ limit: B, windowMs: 1000, align: 'first' }) }]),
    { retryAfter: null },
  ),
];

export const allRows: MatrixRow[] = [...frameworkRows, ...dialectRows, ...blindRows];
