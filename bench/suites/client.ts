/**
 * Client: sluice/client vs bottleneck and p-queue configured for the same limit, and a naive retry
 * loop, each against a fresh strict penalty-box server on loopback (RingCentral model: 20 requests
 * per 1 s sliding window, 1 s penalty restarted by every request sent during it, Retry-After and
 * X-Rate-Limit-* headers). Each contender gets RUN_MS of a backlog larger than the limit allows;
 * we count calls completed (2xx) and 429s received in that time. One run, printed side by side.
 *
 * Usage: npm run bench -- client   (BENCH_CLIENT_MS to change the run length, default 10000)
 */
import Bottleneck from 'bottleneck';
import PQueue from 'p-queue';
import { createClient } from '../../src/client.js';
import { startStrictServer, type StrictServer } from '../../test/client/support/strict-server.js';

const RUN_MS = Number(process.env.BENCH_CLIENT_MS ?? 10_000);
const LIMIT = 20;
const WINDOW_MS = 1000;
const BACKLOG = Math.ceil((LIMIT * RUN_MS) / WINDOW_MS) * 2;
const CONCURRENCY = 16;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Result {
  name: string;
  completed: number;
  r429: number;
  maxInWindow: number;
}

async function server(): Promise<StrictServer> {
  return startStrictServer({ groups: [{ name: 'api', limit: LIMIT, windowMs: WINDOW_MS, penaltyMs: 1000, match: '/' }], headers: 'ringcentral' });
}

const retryAfterMs = (r: Response) => Number(r.headers.get('retry-after') ?? 60) * 1000;

/** Run `start(stopSignal)` for RUN_MS against a fresh server; count completions inside the run. */
async function measure(name: string, start: (url: string, onOk: () => void, stop: AbortSignal) => Promise<void> | void, stopFn?: () => void | Promise<void>): Promise<Result> {
  log(`running ${name}`);
  const s = await server();
  let completed = 0;
  const ac = new AbortController();
  const t0 = Date.now();
  void Promise.resolve(start(s.url, () => Date.now() - t0 <= RUN_MS && completed++, ac.signal)).catch(() => undefined);
  await sleep(RUN_MS);
  ac.abort();
  // Stopping must not wait for stragglers (Bottleneck's stop() waits for its executing jobs).
  await Promise.race([Promise.resolve(stopFn?.()).catch(() => undefined), sleep(1000)]);
  const r: Result = { name, completed, r429: s.total429(), maxInWindow: s.maxInWindow('api') };
  await s.close();
  return r;
}

const results: Result[] = [];
const log = (s: string) => process.stderr.write(`${s}\n`);

// sluice/client: the budget configured, headers read, 429 pauses the group.
{
  let client: ReturnType<typeof createClient> | undefined;
  results.push(
    await measure(
      'sluice/client',
      (url, ok) => {
        client = createClient({ baseUrl: url, groups: { api: { limit: LIMIT, windowMs: WINDOW_MS } }, defaultGroup: 'api', concurrency: CONCURRENCY });
        for (let i = 0; i < BACKLOG; i++) client.fetch(`/x/${i}`).then(async (r) => (await r.text(), r.ok && ok()), () => undefined);
      },
      () => client?.close(),
    ),
  );
}

// bottleneck: reservoir of LIMIT refreshed every window (its documented way to say "N per window"),
// a 429 retried after Retry-After through the `failed` event (octokit's pattern).
{
  let limiter: Bottleneck | undefined;
  results.push(
    await measure(
      'bottleneck 2.19 (reservoir)',
      (url, ok) => {
        limiter = new Bottleneck({ reservoir: LIMIT, reservoirRefreshAmount: LIMIT, reservoirRefreshInterval: WINDOW_MS, maxConcurrent: CONCURRENCY });
        limiter.on('failed', (err: { retryAfter?: number }, info) => (err.retryAfter !== undefined && info.retryCount < 50 ? err.retryAfter : undefined));
        for (let i = 0; i < BACKLOG; i++) {
          limiter
            .schedule(async () => {
              const r = await fetch(`${url}/x/${i}`);
              await r.text();
              if (r.status === 429) throw Object.assign(new Error('429'), { retryAfter: retryAfterMs(r) });
              if (r.ok) ok();
            })
            .catch(() => undefined);
        }
      },
      () => limiter?.stop({ dropWaitingJobs: true }),
    ),
  );
}

// p-queue: intervalCap LIMIT per interval, strict sliding window; a 429 waits Retry-After and re-queues.
{
  let queue: PQueue | undefined;
  results.push(
    await measure(
      'p-queue 9 (strict interval)',
      (url, ok, stop) => {
        const q = new PQueue({ concurrency: CONCURRENCY, intervalCap: LIMIT, interval: WINDOW_MS, strict: true });
        queue = q;
        const job = (i: number): void => {
          q.add(async () => {
            const r = await fetch(`${url}/x/${i}`);
            await r.text();
            if (r.status === 429) {
              await sleep(retryAfterMs(r));
              if (!stop.aborted) job(i);
            } else if (r.ok) ok();
          }).catch(() => undefined);
        };
        for (let i = 0; i < BACKLOG; i++) job(i);
      },
      () => queue?.clear(),
    ),
  );
}

// Naive: CONCURRENCY workers, no pacing, on 429 sleep 1 s and try again.
results.push(
  await measure('naive retry loop (1 s sleep)', async (url, ok, stop) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (!stop.aborted && next < BACKLOG) {
          const i = next++;
          for (;;) {
            if (stop.aborted) return;
            const r = await fetch(`${url}/x/${i}`).catch(() => undefined);
            await r?.text();
            if (r?.ok) {
              ok();
              break;
            }
            await sleep(1000);
          }
        }
      }),
    );
  }),
);

const allowed = (LIMIT * 60_000) / WINDOW_MS;
console.log(`Client vs peers: strict penalty box ${LIMIT}/${WINDOW_MS} ms (allowed ${allowed} calls/min), ${RUN_MS} ms per contender, backlog ${BACKLOG}, concurrency ${CONCURRENCY}`);
console.log(`${'contender'.padEnd(32)} ${'calls/min'.padStart(10)} ${'% allowed'.padStart(10)} ${'429s'.padStart(6)} ${'max/window'.padStart(11)}`);
const sluice = results[0] as Result;
for (const r of results) {
  const perMin = (r.completed * 60_000) / RUN_MS;
  console.log(`${r.name.padEnd(32)} ${perMin.toFixed(0).padStart(10)} ${((perMin / allowed) * 100).toFixed(1).padStart(9)}% ${String(r.r429).padStart(6)} ${String(r.maxInWindow).padStart(11)}`);
}
for (const r of results.slice(1)) {
  console.log(`sluice/client completed ${(sluice.completed / Math.max(1, r.completed)).toFixed(2)}x ${r.name}`);
}
process.exit(0);
