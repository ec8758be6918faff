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
 * Env: BENCH_OBS_MS (measure per round, default 3000), BENCH_ROUNDS (default 5; medians reported),
 * BENCH_CONNECTIONS (default 50), REDIS_URL.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { autocannon } from '../support/autocannon.js';

const NODE_VARIANTS = ['off', 'on-memory', 'on-redis'] as const;
const GATEWAY_VARIANTS = ['gw-off', 'gw-on'] as const;
const VARIANTS = [...NODE_VARIANTS, ...GATEWAY_VARIANTS] as const;
type Variant = (typeof VARIANTS)[number];


/** The sluice gateway (memory store, one per-IP policy nothing reaches) in front of `upstream`, with or without observability. */
async function serveGateway(variant: 'gw-off' | 'gw-on', upstream: string): Promise<number> {
  const { startGateway } = await import('../../src/gateway/server.js');
  const { validateConfig } = await import('../../src/gateway/config.js');
  const config = validateConfig({
    server: { host: '127.0.0.1', port: 0 },
    store: 'memory',
    upstreams: { up: { url: upstream } },
    policies: { 'per-ip': { rateLimitBy: 'ip', requestsAllowed: 1_000_000_000, timeWindowMinutes: 1 } },
    routes: [{ name: 'hello', path: '/', upstream: 'up', policies: ['per-ip'], auth: 'none' }],
    ...(variant === 'gw-on' ? { observability: { logs: { destination: '/dev/null', sampleRate: 0.01 } } } : {}),
  });
  const gw = await startGateway({ config, logger: { info() {}, warn() {}, error() {} } });
  return Number(new URL(gw.url).port);
}

async function serve(variant: Variant): Promise<number> {
  if (variant === 'gw-off' || variant === 'gw-on') return serveGateway(variant, process.argv[4]!);
  const { createPolicyEngine } = await import('../../src/http.js');
  const { nodeRequestInfo, applyResult } = await import('../../src/adapters/node-http.js');
  const { createObserver, eventFromPolicy } = await import('../../src/observability.js');
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

async function observerCostMicros(): Promise<number> {
  const { createPolicyEngine } = await import('../../src/http.js');
  const { createObserver, eventFromPolicy } = await import('../../src/observability.js');
  const engine = createPolicyEngine({ policies: [{ name: 'per-ip', requestsAllowed: 1_000_000_000, timeWindowMinutes: 1, rateLimitBy: 'ip' }], logger: false });
  const observer = createObserver({ logs: { destination: '/dev/null', sampleRate: 0.01 } });
  const info = { method: 'GET', path: '/', url: '/', headers: {}, remoteAddress: '127.0.0.1' };
  const result = engine.evaluate(info);
  if (result instanceof Promise) throw new Error('expected a synchronous result from the memory store');
  const once = () => observer.record(eventFromPolicy({ route: 'hello', request: info, result, status: 200, time: Date.now(), durationMs: 0.1, storeLatencyMs: 0.01 }));
  for (let i = 0; i < 200_000; i++) once();
  const n = 1_000_000;
  const t = performance.now();
  for (let i = 0; i < n; i++) once();
  const us = ((performance.now() - t) * 1000) / n;
  await observer.close();
  return us;
}

if (process.argv[2] === 'upstream') {
  const server = createServer((_req, res) => res.end('hello world'));
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.send?.({ port: (server.address() as AddressInfo).port });
} else if (process.argv[2] === 'serve') {
  process.on('message', () => {
    const c = process.cpuUsage();
    process.send?.({ cpu: c.user + c.system });
  });
  const port = await serve(process.argv[3] as Variant);
  process.send?.({ port });
} else {
  const measureMs = Number(process.env.BENCH_OBS_MS ?? 3000);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
  const self = fileURLToPath(import.meta.url);
  const load = (port: number, ms: number) => autocannon({ url: `http://127.0.0.1:${port}/`, connections, duration: ms / 1000, pipelining: 1 });
  // All three servers stay up for the whole run (warm JIT); each round loads them one after the
  // other in alternating order, and the ratio is taken within the round, so slow drifts in the
  // machine's load (other helpers' tests) hit both sides of a ratio alike. Medians are reported.
  const ports = new Map<Variant, number>();
  const children: ChildProcess[] = [];
  const upstreamChild = fork(self, ['upstream'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const upstreamPort = await new Promise<number>((resolve) => upstreamChild.once('message', (m) => resolve((m as { port: number }).port)));
  for (const v of VARIANTS) {
    const child = fork(self, ['serve', v, `http://127.0.0.1:${upstreamPort}`], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    ports.set(
      v,
      await new Promise<number>((resolve, reject) => {
        child.once('message', (m) => resolve((m as { port: number }).port));
        child.once('exit', (code) => reject(new Error(`server ${v} exited with ${code}`)));
      }),
    );
    await load(ports.get(v)!, 1500); // warm-up
  }
  const childOf = new Map(VARIANTS.map((v, i) => [v, children[i]!]));
  const stats = (v: Variant) =>
    new Promise<{ cpu: number }>((resolve) => {
      const c = childOf.get(v)!;
      c.once('message', (m: unknown) => resolve(m as { cpu: number }));
      c.send('stats');
    });
  const results = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
  const cpuPerReq = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
  const ratios = { 'on-memory': [] as number[], 'on-redis': [] as number[], 'gw-on': [] as number[] };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
    const got = new Map<Variant, number>();
    for (const v of order) {
      const before = await stats(v);
      const r = await load(ports.get(v)!, measureMs);
      const after = await stats(v);
      const us = (after.cpu - before.cpu) / Math.max(1, r.requests.total);
      cpuPerReq.get(v)!.push(us);
      if (r.non2xx > 0 || r.errors > 0) console.log(`  ! ${v}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      got.set(v, r.requests.average);
      results.get(v)!.push(r.requests.average);
      console.log(`round ${round + 1} ${v.padEnd(10)} ${Math.round(r.requests.average).toString().padStart(7)} req/s  p99 ${r.latency.p99} ms  server CPU ${us.toFixed(2)} us/req`);
    }
    ratios['on-memory'].push(got.get('on-memory')! / got.get('off')!);
    ratios['on-redis'].push(got.get('on-redis')! / got.get('off')!);
    ratios['gw-on'].push(got.get('gw-on')! / got.get('gw-off')!);
  }
  for (const c of children) c.kill();
  upstreamChild.kill();
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  console.log(`\n${rounds} rounds, ${measureMs} ms each, ${connections} connections, loopback; median (best) req/s:`);
  for (const v of VARIANTS) console.log(`  ${v.padEnd(10)} ${Math.round(median(results.get(v)!)).toString().padStart(7)} (${Math.round(Math.max(...results.get(v)!))})`);
  const cpu = (v: Variant) => median(cpuPerReq.get(v)!);
  console.log('\nserver CPU per request (median; less sensitive to other load on the machine than req/s):');
  for (const v of VARIANTS) console.log(`  ${v.padEnd(10)} ${cpu(v).toFixed(2)} us/req`);
  console.log(`  CPU-bound throughput ratio off/on: on-memory ${(cpu('off') / cpu('on-memory')).toFixed(3)}, on-redis ${(cpu('off') / cpu('on-redis')).toFixed(3)}, gateway ${(cpu('gw-off') / cpu('gw-on')).toFixed(3)}`);
  // In-process: the observer's own cost per request (eventFromPolicy + record), which the
  // loopback figures above bury in machine noise; compared with the server's CPU per request.
  const inproc = await observerCostMicros();
  console.log(`\nin-process: eventFromPolicy + observer.record = ${inproc.toFixed(3)} us/request = ${((100 * inproc) / cpu('off')).toFixed(1)} % of the off server's CPU per request`);
  console.log('\nratios observability on / off, median of per-round ratios (target >= 0.95):');
  console.log(`  on-memory / off = ${median(ratios['on-memory']).toFixed(3)}  (rounds: ${ratios['on-memory'].map((r) => r.toFixed(3)).join(' ')})`);
  console.log(`  on-redis  / off = ${median(ratios['on-redis']).toFixed(3)}  (rounds: ${ratios['on-redis'].map((r) => r.toFixed(3)).join(' ')})`);
  console.log(`  gateway on / off = ${median(ratios['gw-on']).toFixed(3)}  (rounds: ${ratios['gw-on'].map((r) => r.toFixed(3)).join(' ')})`);
}
