/**
 * Redis store: Sluice's RedisStore vs rate-limiter-flexible's RateLimiterRedis, one process, same
 * Redis (REDIS_URL, default the local one), same ioredis client options, same run.
 *
 * 10k keys, a limit nothing reaches (the decision path is measured, not refusals), at concurrency
 * 1 (one caller awaiting each decision: latency-bound) and 64 (64 callers in flight: throughput).
 * Rounds alternate between contenders so drift on this shared 2-core machine hits both alike;
 * the best round of each is reported, and the median of per-round ratios (the robust figure).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { createLimiter } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';

const URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DURATION_MS = Number(process.env.BENCH_MS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const KEYS = 10_000;
const run = randomUUID().slice(0, 8);
const keys = Array.from({ length: KEYS }, (_, i) => `user:${(i * 2654435761) % 4294967296}`);

/** The same client options for both contenders. */
function client(): Redis {
  return new Redis(URL, { enableOfflineQueue: true, maxRetriesPerRequest: 1 });
}

type Decide = (key: string) => Promise<unknown>;

/** `concurrency` callers each awaiting one decision at a time for DURATION_MS: decisions/s. */
async function measure(decide: Decide, concurrency: number, ms = DURATION_MS): Promise<number> {
  let ops = 0;
  let next = 0;
  const end = performance.now() + ms;
  const start = performance.now();
  const worker = async () => {
    while (performance.now() < end) {
      const key = keys[next] as string;
      next = next + 1 === KEYS ? 0 : next + 1;
      await decide(key);
      ops++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return (ops / (performance.now() - start)) * 1000;
}

const rlfClient = client();
const sluiceClient = client();
await Promise.all([rlfClient, sluiceClient].map((c) => new Promise((r) => c.once('ready', r))));
const rlf = new RateLimiterRedis({ storeClient: rlfClient, points: 1e9, duration: 3600, keyPrefix: `rlfbench${run}` });
const store = new RedisStore({ client: sluiceClient, prefix: `sluicebench${run}:`, timeoutMs: 5000 });
const limiter = createLimiter({ limit: 1e9, windowMs: 3_600_000, store });

const contenders: [string, Decide][] = [
  ['rate-limiter-flexible RateLimiterRedis', (k) => rlf.consume(k)],
  ['sluice RedisStore', (k) => limiter.consume(k)],
];

console.log(
  `Redis store: ${KEYS.toLocaleString('en')} keys, ${URL}, ${ROUNDS} rounds x ${DURATION_MS} ms per contender ` +
    '(alternating order); best round per contender, and the median of the per-round ratios',
);
const fmt = (n: number) => Math.round(n).toLocaleString('en').padStart(10);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
for (const concurrency of [1, 64]) {
  for (const [, decide] of contenders) await measure(decide, concurrency, 500); // warm-up
  const rates: Record<string, number[]> = {};
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const [name, decide] of order) (rates[name] ??= []).push(await measure(decide, concurrency));
  }
  const [peer, ours] = contenders.map(([name]) => rates[name] as number[]) as [number[], number[]];
  // Both contenders of one round ran back to back, so their ratio is less exposed to the drift of
  // this shared machine than the ratio of two best rounds taken minutes apart.
  const ratios = ours.map((r, i) => r / (peer[i] as number));
  console.log(`\nconcurrency ${concurrency}:`);
  console.log(`  ${contenders[0]?.[0].padEnd(40)} best ${fmt(Math.max(...peer))} decisions/s   rounds: ${peer.map((r) => Math.round(r / 1000)).join(' ')} k/s`);
  console.log(`  ${contenders[1]?.[0].padEnd(40)} best ${fmt(Math.max(...ours))} decisions/s   rounds: ${ours.map((r) => Math.round(r / 1000)).join(' ')} k/s`);
  console.log(
    `  ratio sluice / rate-limiter-flexible: best rounds ${(Math.max(...ours) / Math.max(...peer)).toFixed(2)}x, ` +
      `median per-round ${median(ratios).toFixed(2)}x (range ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`,
  );
}

// Clean up the benchmark's keys (both prefixes) so the shared Redis does not keep them for an hour.
for (const pattern of [`rlfbench${run}*`, `sluicebench${run}:*`]) {
  let cursor = '0';
  do {
    const [nextCursor, found] = await rlfClient.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
    cursor = nextCursor;
    if (found.length > 0) await rlfClient.unlink(...found);
  } while (cursor !== '0');
}
await store.close();
rlfClient.disconnect();
sluiceClient.disconnect();
