/**
 * Redis store: Sluice's RedisStore (the built dist/) vs rate-limiter-flexible's RateLimiterRedis,
 * one process, same Redis (REDIS_URL, default the local one), same ioredis client options, same run.
 *
 * 1. 10k keys, a limit nothing reaches (the decision path is measured, not refusals), at
 *    concurrency 1 (one caller awaiting each decision: latency-bound) and 64 (64 callers in flight:
 *    throughput).
 * 2. Sliding log vs GCRA in Sluice, one hot key at limit 1000 and 10 000 per second, concurrency
 *    64: the log is full, so most decisions are refusals that must find the unit to wait for.
 *
 * Rounds alternate between contenders so drift on this shared 2-core machine hits both alike;
 * the best round of each is reported, and the median of per-round ratios (the robust figure).
 * Node CPU per decision (process.cpuUsage over the round) is printed with each contender, and
 * Redis CPU per decision: the growth of `INFO commandstats` EVALSHA time over the round divided by
 * the round's decisions (the server is shared: other clients' EVALSHA calls in the round count
 * too, so the EVALSHA calls per decision are printed next to it; 1.00 at concurrency 1 = clean).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { built } from '../support/built.js';

const { createLimiter } = await built<typeof import('../../src/index.js')>('index');
const { RedisStore } = await built<typeof import('../../src/redis.js')>('redis');

const URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DURATION_MS = Number(process.env.BENCH_MS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const KEYS = 10_000;
/** BENCH_CONCURRENCY=1 or =64: one of the peer comparison's two concurrencies. */
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,64').split(',').map(Number);
const run = randomUUID().slice(0, 8);
const keys = Array.from({ length: KEYS }, (_, i) => `user:${(i * 2654435761) % 4294967296}`);

/** The same client options for both contenders. */
function client(): Redis {
  return new Redis(URL, { enableOfflineQueue: true, maxRetriesPerRequest: 1 });
}

type Decide = (key: string) => Promise<unknown>;

/** Decisions per second, Node and Redis CPU µs per decision, script calls per decision of one round. */
interface Round {
  readonly rate: number;
  readonly cpuUs: number;
  readonly redisUs: number;
  readonly callsPer: number;
}

/** A third connection, for `INFO` only. */
const admin = client();

/** What the Redis CPU column counts: script calls by SHA and function calls. */
const SCRIPT_CALLS = 'EVALSHA+FCALL';

/** Total EVALSHA and FCALL calls and µs so far on the server. */
async function evalshaStats(): Promise<[calls: number, usec: number]> {
  const info = await admin.info('commandstats');
  let calls = 0;
  let usec = 0;
  for (const m of info.matchAll(/cmdstat_(?:evalsha|fcall):calls=(\d+),usec=(\d+)/g)) {
    calls += Number(m[1]);
    usec += Number(m[2]);
  }
  return [calls, usec];
}

/** `concurrency` callers each awaiting one decision at a time for `ms`. */
async function measure(decide: Decide, concurrency: number, ms = DURATION_MS): Promise<Round> {
  let ops = 0;
  let next = 0;
  const before = await evalshaStats();
  const end = performance.now() + ms;
  const start = performance.now();
  const cpu = process.cpuUsage();
  const worker = async () => {
    while (performance.now() < end) {
      const key = keys[next] as string;
      next = next + 1 === KEYS ? 0 : next + 1;
      await decide(key);
      ops++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const used = process.cpuUsage(cpu);
  const elapsed = performance.now() - start;
  const after = await evalshaStats();
  return {
    rate: (ops / elapsed) * 1000,
    cpuUs: (used.user + used.system) / ops,
    redisUs: (after[1] - before[1]) / ops,
    callsPer: (after[0] - before[0]) / ops,
  };
}

const rlfClient = client();
const sluiceClient = client();
await Promise.all([rlfClient, sluiceClient, admin].map((c) => new Promise((r) => c.once('ready', r))));
const rlf = new RateLimiterRedis({ storeClient: rlfClient, points: 1e9, duration: 3600, keyPrefix: `rlfbench${run}` });
const store = new RedisStore({ client: sluiceClient, prefix: `sluicebench${run}:`, timeoutMs: 5000 });
const limiter = createLimiter({ limit: 1e9, windowMs: 3_600_000, store });
/**
 * BENCH_BASE_DIST=<dir>: Sluice from another build too (a copy of main's dist/), as a third
 * contender on its own client, for an A/B of a change in the same run.
 */
const baseDist = process.env.BENCH_BASE_DIST;
const base =
  baseDist === undefined
    ? undefined
    : await (async () => {
        const at = (entry: string) => pathToFileURL(join(baseDist, `${entry}.js`)).href;
        const core = (await import(at('index'))) as typeof import('../../src/index.js');
        const redis = (await import(at('redis'))) as typeof import('../../src/redis.js');
        const c = client();
        await new Promise((r) => c.once('ready', r));
        const s = new redis.RedisStore({ client: c, prefix: `sluicebase${run}:`, timeoutMs: 5000 });
        return { client: c, store: s, limiter: core.createLimiter({ limit: 1e9, windowMs: 3_600_000, store: s }) };
      })();

const fmt = (n: number) => Math.round(n).toLocaleString('en').padStart(10);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/**
 * Alternating rounds of a peer and Sluice (and, with BENCH_BASE_DIST, Sluice from another build);
 * prints best rounds, the median per-round ratio of each contender to the first, and Node and
 * Redis CPU per decision (median over rounds).
 */
async function compare(title: string, contenders: [string, Decide][], concurrency: number): Promise<void> {
  for (const [, decide] of contenders) await measure(decide, concurrency, 500); // warm-up
  const rounds: Record<string, Round[]> = {};
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const [name, decide] of order) (rounds[name] ??= []).push(await measure(decide, concurrency));
  }
  const best = (rs: Round[]) => Math.max(...rs.map((r) => r.rate));
  console.log(`\n${title}:`);
  for (const [name] of contenders) {
    const rs = rounds[name] as Round[];
    console.log(
      `  ${name.padEnd(40)} best ${fmt(best(rs))} decisions/s   rounds: ${rs.map((r) => Math.round(r.rate / 1000)).join(' ')} k/s` +
        `   Node CPU ${median(rs.map((r) => r.cpuUs)).toFixed(2)} µs/decision` +
        `   Redis CPU ${median(rs.map((r) => r.redisUs)).toFixed(2)} µs/decision (${median(rs.map((r) => r.callsPer)).toFixed(2)} ${SCRIPT_CALLS}/decision)`,
    );
  }
  const [first, ...others] = contenders.map(([name]) => name);
  const peer = rounds[first as string] as Round[];
  for (const name of others) {
    const ours = rounds[name] as Round[];
    // Both contenders of one round ran back to back, so their ratio is less exposed to the drift of
    // this shared machine than the ratio of two best rounds taken minutes apart.
    const ratios = ours.map((r, i) => r.rate / (peer[i] as Round).rate);
    console.log(
      `  ratio ${name} / ${first}: best rounds ${(best(ours) / best(peer)).toFixed(2)}x, ` +
        `median per-round ${median(ratios).toFixed(2)}x (range ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`,
    );
  }
}

const wanted = (process.env.BENCH_REDIS ?? 'peer,sliding-log').split(',');
console.log(
  `Redis store: ${URL}, ${ROUNDS} rounds x ${DURATION_MS} ms per contender ` +
    '(alternating order); best round per contender, and the median of the per-round ratios',
);
if (wanted.includes('peer')) {
  const contenders: [string, Decide][] = [
    ['rate-limiter-flexible RateLimiterRedis', (k) => rlf.consume(k)],
    ['sluice RedisStore', (k) => limiter.consume(k)],
  ];
  if (base !== undefined) contenders.push(['sluice RedisStore (BENCH_BASE_DIST)', (k) => base.limiter.consume(k)]);
  for (const concurrency of CONCURRENCY) await compare(`${KEYS.toLocaleString('en')} keys, concurrency ${concurrency}`, contenders, concurrency);
}
if (wanted.includes('sliding-log')) {
  for (const limit of [1000, 10_000]) {
    // One hot key: every decision reads the same (full) log.
    const hot = `hot:${limit}`;
    const of = (algorithm: 'gcra' | 'sliding-log') => createLimiter({ algorithm, limit, windowMs: 1000, store });
    const gcra = of('gcra');
    const log = of('sliding-log');
    await compare(
      `one hot key, limit ${limit.toLocaleString('en')} per second, concurrency 64`,
      [
        ['sluice gcra', () => gcra.consume(hot)],
        ['sluice sliding-log', () => log.consume(hot)],
      ],
      64,
    );
  }
}

// Clean up the benchmark's keys (both prefixes) so the shared Redis does not keep them for an hour.
for (const pattern of [`rlfbench${run}*`, `sluicebench${run}:*`, `sluicebase${run}:*`]) {
  let cursor = '0';
  do {
    const [nextCursor, found] = await rlfClient.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
    cursor = nextCursor;
    if (found.length > 0) await rlfClient.unlink(...found);
  } while (cursor !== '0');
}
await store.close();
await base?.store.close();
base?.client.disconnect();
rlfClient.disconnect();
sluiceClient.disconnect();
admin.disconnect();
