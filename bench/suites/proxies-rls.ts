/**
 * Sluice as Envoy's rate limit service (`npm run bench -- proxies`, RLS part).
 *
 * `ShouldRateLimit` over gRPC (grpc-js) against
 *   - trivial: a grpc-js server with the same protos whose handler answers a constant OK (the
 *     protocol's own ceiling: transport + protobuf codec, no decision),
 *   - sluice-memory: Sluice's rate limit service, memory store,
 *   - sluice-redis: the same over the Redis store (127.0.0.1:6379, throwaway key prefix),
 *   - http2-sluice: the issue's open question, measured only: the same RlsService (memory store)
 *     served by a bare node:http2 gRPC handler (length-prefixed frames, grpc-status trailer,
 *     protobufjs request decoding, Sluice's response encoder) instead of grpc-js.
 * Each server runs in its own process; one load process keeps BENCH_RLS_CONCURRENCY calls in
 * flight for BENCH_RLS_MS. Reported: calls/s, client p99, and the server's CPU time per call
 * (process.cpuUsage over the round / calls), the figure the target compares (Sluice <= 1.25x the
 * trivial handler). Variants alternate per round; the best round of each is kept.
 *
 * Requests look like Envoy's for a per-IP limit: domain + one descriptor [remote_address=<ip>],
 * IPs drawn from 1000, limit high enough that every call is admitted (the decision path is the
 * same either way; refusals only add headers).
 *
 * Env: BENCH_RLS_MS (per round, default 4000), BENCH_ROUNDS (default 3), BENCH_RLS_CONCURRENCY (default 64).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer as createHttp2Server, type ServerHttp2Stream } from 'node:http2';
import { join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import type { Store } from '../../src/core/store.js';
import { encodeResponse } from '../../src/decisions/rls/codec.js';
import { loadRateLimitConfigs, rateLimitServiceDefinition, RlsService, startRlsServer, type RlsRequest, type RlsResponse } from '../../src/decisions/rls/index.js';
import { PROTO_OPTIONS, protoDir } from '../../src/decisions/rls/server.js';
import { MemoryStore } from '../../src/stores/memory-store.js';
import { RedisStore } from '../../src/stores/redis-store.js';

const role = process.argv[2];
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const CONFIG = 'domain: bench\ndescriptors:\n  - key: remote_address\n    rate_limit: { unit: second, requests_per_unit: 1000000000 }\n';

/** Server roles: start, report the port, answer 'cpu' with the process's CPU time (µs). */
async function server(kind: string): Promise<void> {
  process.on('message', (m) => {
    if (m === 'cpu') {
      const u = process.cpuUsage();
      process.send?.({ cpu: u.user + u.system });
    }
  });
  if (kind === 'trivial') {
    const s = new grpc.Server();
    const reply = { overall_code: 'OK', statuses: [{ code: 'OK' }] };
    s.addService(rateLimitServiceDefinition().service, {
      ShouldRateLimit: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, reply),
    });
    s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (_err, port) => process.send?.({ port }));
    return;
  }
  if (kind === 'http2-sluice') {
    const service = new RlsService({ config: loadRateLimitConfigs([{ name: 'bench.yaml', text: CONFIG }]), store: new MemoryStore() });
    const dir = protoDir();
    const def = protoLoader.loadSync(join(dir, 'envoy/service/ratelimit/v3/rls.proto'), { ...PROTO_OPTIONS, includeDirs: [dir] });
    const decode = (def['envoy.service.ratelimit.v3.RateLimitService'] as Record<string, protoLoader.MethodDefinition<RlsRequest, RlsResponse>>).ShouldRateLimit?.requestDeserialize as (b: Buffer) => RlsRequest;
    const h2 = createHttp2Server();
    h2.on('stream', (stream: ServerHttp2Stream) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const body = Buffer.concat(chunks);
        const out = encodeResponse(service.shouldRateLimit(decode(body.subarray(5, 5 + body.readUInt32BE(1)))) as RlsResponse);
        const frame = Buffer.allocUnsafe(5 + out.length);
        frame[0] = 0;
        frame.writeUInt32BE(out.length, 1);
        out.copy(frame, 5);
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(frame);
      });
    });
    h2.listen(0, '127.0.0.1', () => process.send?.({ port: (h2.address() as { port: number }).port }));
    return;
  }
  const store: Store = kind === 'sluice-redis' ? new RedisStore({ url: REDIS_URL, prefix: process.argv[3] as string, timeoutMs: 5000 }) : new MemoryStore();
  const service = new RlsService({ config: loadRateLimitConfigs([{ name: 'bench.yaml', text: CONFIG }]), store });
  const rls = await startRlsServer({ service, port: 0 });
  process.send?.({ port: rls.port });
}

/** Load role: keep `concurrency` calls in flight for `ms`; report calls, errors and p99 (ms). */
async function load(address: string, ms: number, concurrency: number): Promise<void> {
  const { client: Client } = rateLimitServiceDefinition();
  const c = new Client(address, grpc.credentials.createInsecure()) as unknown as Record<string, (req: unknown, cb: (err: Error | null) => void) => void>;
  const call = c.ShouldRateLimit as (req: unknown, cb: (err: Error | null) => void) => void;
  const requests = Array.from({ length: 1000 }, (_, i) => ({ domain: 'bench', descriptors: [{ entries: [{ key: 'remote_address', value: `10.0.${i >> 8}.${i & 255}` }] }] }));
  // Warm-up: connection, JIT.
  await Promise.all(Array.from({ length: 200 }, (_, i) => new Promise((r) => call.call(c, requests[i % 1000], r))));
  let calls = 0;
  let errors = 0;
  const latencies: number[] = [];
  const end = Date.now() + ms;
  process.send?.({ started: true });
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      let i = w;
      while (Date.now() < end) {
        const t0 = performance.now();
        await new Promise<void>((resolve) =>
          call.call(c, requests[i++ % 1000], (err) => {
            if (err) errors++;
            else calls++;
            latencies.push(performance.now() - t0);
            resolve();
          }),
        );
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  process.send?.({ calls, errors, p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0 });
  process.exit(0);
}

interface Child {
  proc: ChildProcess;
  port: number;
}

const self = fileURLToPath(import.meta.url);
const spawnRole = (...args: string[]) => fork(self, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const next = <T>(p: ChildProcess, has: string) =>
  new Promise<T>((resolve, reject) => {
    const on = (m: unknown) => {
      if (m !== null && typeof m === 'object' && has in m) {
        p.off('message', on);
        resolve(m as T);
      }
    };
    p.on('message', on);
    p.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
  });

async function main(): Promise<void> {
  const ms = Number(process.env.BENCH_RLS_MS ?? 4000);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const concurrency = Number(process.env.BENCH_RLS_CONCURRENCY ?? 64);
  const prefix = `sluice-bench-rls-${randomBytes(4).toString('hex')}:`;
  const variants = ['trivial', 'sluice-memory', 'sluice-redis', 'http2-sluice'];
  const servers = new Map<string, Child>();
  for (const v of variants) {
    const proc = spawnRole(v, prefix);
    servers.set(v, { proc, port: (await next<{ port: number }>(proc, 'port')).port });
  }
  const best = new Map<string, { rate: number; cpuPerCall: number; p99: number; errors: number }>();
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const s = servers.get(v) as Child;
      const loader = spawnRole('load', `127.0.0.1:${s.port}`, String(ms), String(concurrency));
      await next(loader, 'started');
      s.proc.send('cpu');
      const cpu0 = (await next<{ cpu: number }>(s.proc, 'cpu')).cpu;
      const t0 = performance.now();
      const res = await next<{ calls: number; errors: number; p99: number }>(loader, 'calls');
      const elapsed = (performance.now() - t0) / 1000;
      s.proc.send('cpu');
      const cpu1 = (await next<{ cpu: number }>(s.proc, 'cpu')).cpu;
      const row = { rate: res.calls / elapsed, cpuPerCall: (cpu1 - cpu0) / Math.max(1, res.calls), p99: res.p99, errors: res.errors };
      const prev = best.get(v);
      if (prev === undefined || row.cpuPerCall < prev.cpuPerCall) best.set(v, row);
      console.log(`round ${r + 1} ${v.padEnd(14)} ${row.rate.toFixed(0).padStart(7)} calls/s  server CPU ${row.cpuPerCall.toFixed(1).padStart(6)} µs/call  p99 ${row.p99.toFixed(2)} ms  errors ${row.errors}`);
    }
  }
  for (const s of servers.values()) s.proc.kill();
  const base = best.get('trivial') as { rate: number; cpuPerCall: number };
  console.log(`\nEnvoy RLS (gRPC ShouldRateLimit, ${concurrency} in flight, best of ${rounds} rounds of ${ms} ms):`);
  console.log('variant          calls/s   server CPU/call   ratio to trivial   p99');
  for (const v of variants) {
    const b = best.get(v) as { rate: number; cpuPerCall: number; p99: number; errors: number };
    console.log(`${v.padEnd(14)} ${b.rate.toFixed(0).padStart(9)}   ${b.cpuPerCall.toFixed(1).padStart(10)} µs   ${(b.cpuPerCall / base.cpuPerCall).toFixed(2).padStart(12)}x   ${b.p99.toFixed(2)} ms${b.errors ? `  (${b.errors} errors)` : ''}`);
  }
  const ratio = (best.get('sluice-memory') as { cpuPerCall: number }).cpuPerCall / base.cpuPerCall;
  console.log(`target: Sluice (memory) server CPU per call <= 1.25x the trivial handler: ${ratio.toFixed(2)}x ${ratio <= 1.25 ? 'MET' : 'NOT MET'}`);
  const h2 = best.get('http2-sluice') as { rate: number; cpuPerCall: number };
  console.log(`node:http2 + Sluice's encoder vs grpc-js trivial: ${(base.cpuPerCall / h2.cpuPerCall).toFixed(2)}x fewer server CPU µs per call, ${(h2.rate / base.rate).toFixed(2)}x the calls/s (switch if >= 2x)`);
  const redis = new Redis(REDIS_URL);
  let cursor = '0';
  do {
    const [n, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = n;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  redis.disconnect();
}

if (role === 'load') await load(process.argv[3] as string, Number(process.argv[4]), Number(process.argv[5]));
else if (role !== undefined) await server(role);
else await main();
