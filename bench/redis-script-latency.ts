/**
 * What one decision per round trip can gain from a cheaper Redis script: the same ioredis call
 * (`client.call('EVALSHA', ...)`, one caller awaiting each call, 10k keys) with scripts of
 * increasing cost, on a redis-server of its own (so `INFO commandstats` counts only these calls),
 * rounds interleaved (A B C D, then D C B A, ...). Prints per script the calls/s, this process's
 * CPU per call (process.cpuUsage) and the script's Redis time per call (commandstats usec).
 *
 *   npx tsx bench/redis-script-latency.ts
 *
 * Scripts: an empty one (`return {1,2,3}`, the floor of any script call), rate-limiter-flexible's
 * RateLimiterRedis script (SET NX, INCRBY, PTTL), and Sluice's single-decision GCRA script (TIME,
 * GET, SET KEEPTTL) with the store's arguments.
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { SINGLE } from '../src/stores/redis-store.js';
import { freePort } from './support/roles.js';

const PEER = `redis.call('set', KEYS[1], 0, 'EX', ARGV[2], 'NX')
local consumed = redis.call('incrby', KEYS[1], ARGV[1])
local ttl = redis.call('pttl', KEYS[1])
if ttl == -1 then
  redis.call('expire', KEYS[1], ARGV[2])
  ttl = 1000 * ARGV[2]
end
return {consumed, ttl}`;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const N = Number(process.env.BENCH_CALLS ?? 8000);

const port = await freePort();
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
const c = new Redis({ port, enableOfflineQueue: true, maxRetriesPerRequest: 1 });
try {
  const keys = Array.from({ length: 10_000 }, (_, i) => `user:${(i * 2654435761) % 4294967296}`);
  const load = async (source: string) => (await c.script('LOAD', source)) as string;
  const [empty, peer, gcra] = [await load('return {1, 2, 3}'), await load(PEER), await load((SINGLE.get('gcra') as { source: string }).source)];
  // The bench limiter's rule (limit 1e9 per hour): burst, windowUs, intervalUs, tauUs.
  const spec = ['1000000000', '3600000000', '4', '4000000000'];
  const scripts: [string, (k: string) => Promise<unknown>][] = [
    ['empty script', (k) => c.call('EVALSHA', empty, 1, `e:{${k}}:x`, 'T', '0', ...spec, 1)],
    ['rate-limiter-flexible script', (k) => c.call('EVALSHA', peer, 1, `p:${k}`, 1, 3600)],
    ['sluice single-decision GCRA', (k) => c.call('EVALSHA', gcra, 1, `s:{${k}}:x`, 'T', '0', ...spec, 1)],
  ];
  const usec = async () => Number(/cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(await c.info('commandstats'))?.[1] ?? 0);
  for (const [, f] of scripts) for (let i = 0; i < 3000; i++) await f(keys[i % keys.length] as string); // warm-up, keys created
  const res = new Map<string, { rate: number[]; cpu: number[]; redis: number[] }>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, f] of r % 2 ? [...scripts].reverse() : scripts) {
      const u0 = await usec();
      const cpu = process.cpuUsage();
      const t = performance.now();
      for (let i = 0; i < N; i++) await f(keys[(r * N + i) % keys.length] as string);
      const used = process.cpuUsage(cpu);
      const elapsed = performance.now() - t;
      const u1 = await usec();
      const e = res.get(name) ?? { rate: [], cpu: [], redis: [] };
      e.rate.push((N / elapsed) * 1000);
      e.cpu.push((used.user + used.system) / N);
      e.redis.push((u1 - u0) / N);
      res.set(name, e);
    }
  }
  const med = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1] as number;
  const peerRate = med((res.get('rate-limiter-flexible script') as { rate: number[] }).rate);
  console.log(`one call at a time, ${ROUNDS} rounds x ${N} calls per script (medians over rounds):`);
  for (const [name, e] of res) {
    console.log(
      `  ${name.padEnd(30)} ${Math.round(med(e.rate)).toLocaleString('en').padStart(7)} calls/s (${(med(e.rate) / peerRate).toFixed(2)}x the peer's script)` +
        `   Node CPU ${med(e.cpu).toFixed(1)} µs/call   Redis ${med(e.redis).toFixed(2)} µs/call`,
    );
  }
} finally {
  c.disconnect();
  server.kill();
}
