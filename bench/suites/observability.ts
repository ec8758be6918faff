/**
 * Observability cost: requests/s of one node:http route with a Sluice policy (memory store), with
 * the observer off and on, served by a child process and loaded by autocannon over loopback.
 * Variants (alternated each round so drift hits all equally):
 * - `off`: policy only;
 * - `on-memory`: policy + observer (metrics, logs of 429s and 1 % of allowed requests to /dev/null,
 *   memory analytics, warnings);
 * - `on-redis`: the same with analytics flushed to the shared Redis every second.
 * Nothing is refused (limit far above the load), so every request is an allowed one.
 *
 * Env: BENCH_OBS_MS (measure per round, default 4000), BENCH_ROUNDS (default 3, best kept),
 * BENCH_CONNECTIONS (default 50), REDIS_URL.
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const VARIANTS = ['off', 'on-memory', 'on-redis'] as const;
type Variant = (typeof VARIANTS)[number];

interface AutocannonResult {
  requests: { average: number };
  latency: { p99: number };
  non2xx: number;
  errors: number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (o: { url: string; connections: number; duration: number; pipelining: number }) => Promise<AutocannonResult>;

async function serve(variant: Variant): Promise<number> {
  const { createPolicyEngine, nodeRequestInfo, applyResult } = await import('../../src/http.js');
  const { createObserver, eventFromPolicy } = await import('../../src/observability/index.js');
  const engine = createPolicyEngine({ policies: [{ name: 'per-ip', requestsAllowed: 1_000_000_000, timeWindowMinutes: 1, rateLimitBy: 'ip' }], logger: false });
  let observer: ReturnType<typeof createObserver> | undefined;
  if (variant !== 'off') {
    const analytics =
      variant === 'on-redis'
        ? { redis: new (await import('ioredis')).Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'), prefix: `bench:obs:${randomUUID()}:`, retentionMs: 5 * 60_000 }
        : {};
    observer = createObserver({ logs: { destination: '/dev/null', sampleRate: 0.01 }, analytics });
  }
  const noUser = () => undefined;
  const server = createServer((req, res) => {
    const time = Date.now();
    const t0 = performance.now();
    const info = nodeRequestInfo(req, noUser, undefined);
    const done = (result: Awaited<ReturnType<typeof engine.evaluate>>) => {
      const storeMs = performance.now() - t0;
      if (applyResult(result, res)) res.end('hello world');
      observer?.record(eventFromPolicy({ route: 'hello', request: info, result, status: res.statusCode, time, durationMs: performance.now() - t0, storeLatencyMs: storeMs }));
    };
    const r = engine.evaluate(info);
    if (r instanceof Promise) void r.then(done);
    else done(r);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

if (process.argv[2] === 'serve') {
  const port = await serve(process.argv[3] as Variant);
  process.send?.({ port });
} else {
  const measureMs = Number(process.env.BENCH_OBS_MS ?? 4000);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
  const self = fileURLToPath(import.meta.url);
  const load = (port: number, ms: number) => autocannon({ url: `http://127.0.0.1:${port}/`, connections, duration: ms / 1000, pipelining: 1 });
  const best = new Map<Variant, number>();
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
    for (const v of order) {
      const child = fork(self, ['serve', v], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const port = await new Promise<number>((resolve, reject) => {
        child.once('message', (m) => resolve((m as { port: number }).port));
        child.once('exit', (code) => reject(new Error(`server ${v} exited with ${code}`)));
      });
      await load(port, 1500);
      const r = await load(port, measureMs);
      child.kill();
      if (r.non2xx > 0 || r.errors > 0) console.log(`  ! ${v}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      best.set(v, Math.max(best.get(v) ?? 0, r.requests.average));
      console.log(`round ${round + 1} ${v.padEnd(10)} ${Math.round(r.requests.average).toString().padStart(7)} req/s  p99 ${r.latency.p99} ms`);
    }
  }
  const rps = (v: Variant) => best.get(v) ?? 0;
  console.log(`\nbest of ${rounds} rounds, ${measureMs} ms each, ${connections} connections, loopback:`);
  for (const v of VARIANTS) console.log(`  ${v.padEnd(10)} ${Math.round(rps(v)).toString().padStart(7)} req/s`);
  console.log('\nratios (observability on / off; target >= 0.95):');
  console.log(`  on-memory / off = ${(rps('on-memory') / rps('off')).toFixed(3)}`);
  console.log(`  on-redis  / off = ${(rps('on-redis') / rps('off')).toFixed(3)}`);
}
