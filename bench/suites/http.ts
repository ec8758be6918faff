/**
 * HTTP layer: one route served by a child process (bench/support/http-servers.mjs: plain node,
 * the built dist/ and the peers from node_modules, no loader), loaded by autocannon over loopback
 * from this process with fixed connections and duration. Every server stays up for the whole run
 * and the rounds are interleaved (every variant once per round, in the same order), so a burst of
 * load from elsewhere on the machine hits one round of every variant rather than all rounds of one.
 *
 * Two figures per variant and round: requests/s, and CPU time per request of the server process
 * (process.cpuUsage over the measured interval / requests answered; steadier than req/s on a
 * shared machine because the load generator's and other processes' CPU is not counted).
 *
 * Like with like: every limited variant limits by client IP, limit 1e9 per minute (never reached),
 * in-memory counters. Headers: both peers write X-RateLimit-Limit/Remaining/Reset on every response
 * by default, so the Sluice adapters compared with them run `headerMode: 'legacy'` (the same three
 * headers). The node:http overhead is measured with Sluice's default headers (`retry-after`: no
 * rate-limit header on an admitted response) and with `legacy`. Sluice also sets `x-request-id` on
 * every response (the peers do not); that is part of its cost here.
 *
 * Ratios are computed per round (the two variants of a pair measured a few seconds apart) and
 * summarised as median [min..max] over the rounds.
 *
 * First, before any server starts: Sluice's own CPU per request in this process (the node:http
 * adapter on a real ServerResponse, no sockets), per header mode: the steady figure for work on
 * src/http. To profile a server under load: `node --cpu-prof bench/support/http-servers.mjs
 * node-sluice`, load the port it prints with autocannon, then Ctrl-C (the profile is written on exit).
 *
 * Floors: `node-floor`, `express-floor` and `fastify-floor` limit nothing but write the headers
 * Sluice always writes (`x-request-id`; on Express and Fastify also the three legacy headers), with
 * fixed values, node-floor in the README handler's shape (async, one await). What a variant costs
 * over its floor is the limiting itself; what the floor costs over bare is Sluice's behaviour
 * (headers on every response) priced by Node and the framework.
 *
 * Instruction counts (BENCH_HTTP_COUNT=instructions, needs valgrind): on a shared 2-core VM the
 * CPU-time figures cannot resolve a few percent. This mode runs each server under `valgrind
 * --tool=cachegrind --cache-sim=no` twice, answering BENCH_HTTP_N1 (default 4000) and then
 * BENCH_HTTP_N2 (default 24000) requests from autocannon (10 connections), and reports (I2 - I1) /
 * (N2 - N1): the user-space instructions of one request in steady state (start-up and JIT warm-up
 * cancel out; the kernel's share, e.g. bytes on the wire, is not counted). Much less dependent on
 * the machine's load than CPU time, but not exact: JIT tiering and GC vary between runs and the
 * compiler's background threads are counted too. The same server measured in two runs has differed
 * by up to 7% (node:http) and 12% (Fastify): repeat, and read only differences larger than that.
 * BENCH_HTTP_JOBS servers at a time (default 2).
 *
 * A/B: BENCH_HTTP_BASE=<dir> adds, for every Sluice variant, the same variant on the build in
 * <dir> (e.g. main's dist/ copied to /tmp/base/dist, with /tmp/base/node_modules a symlink to this
 * tree's), interleaved with this tree's, both modes.
 *
 * Env: BENCH_HTTP_MS (measured per round, default 3000), BENCH_ROUNDS (default 5),
 * BENCH_CONNECTIONS (default 50), BENCH_HTTP_VARIANTS (comma list, default all), BENCH_HTTP_RATE
 * (requests/s offered to every variant; default none: as fast as each server answers; with a rate,
 * req/s only shows whether the rate was met and CPU per request is the figure to read).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { autocannon } from '../support/autocannon.js';
import { built } from '../support/built.js';
import { cpuOf, forkRole } from '../support/roles.js';

const ALL = [
  'node-bare',
  'node-floor',
  'node-sluice',
  'node-sluice-legacy',
  'express-bare',
  'express-floor',
  'express-rate-limit',
  'express-sluice',
  'fastify-bare',
  'fastify-floor',
  'fastify-rate-limit',
  'fastify-sluice',
] as const;
type Variant = (typeof ALL)[number];

/** One measured round of one variant. */
interface Sample {
  readonly rps: number;
  /** Server CPU µs per request. */
  readonly cpuUs: number;
  readonly p99: number;
}

const measureMs = Number(process.env.BENCH_HTTP_MS ?? 3000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const base = process.env.BENCH_HTTP_BASE;
/** A server to measure: a variant, on this tree's dist/ or (label `<variant>@base`) on BENCH_HTTP_BASE. */
type Contender = Variant | `${Variant}@base`;
const variants: Contender[] = ((process.env.BENCH_HTTP_VARIANTS?.split(',') ?? ALL) as Variant[]).flatMap((v) => (base !== undefined && v.includes('sluice') ? [`${v}@base` as const, v] : [v]));
const distOf = (c: Contender) => (c.endsWith('@base') ? base : undefined);
const variantOf = (c: Contender) => c.replace(/@base$/, '') as Variant;
// A fixed offered load: every variant then sees the same arrival pattern, so CPU per request is
// not skewed by how much each server batches at saturation (the steadier mode on a busy machine).
const rate = process.env.BENCH_HTTP_RATE === undefined ? undefined : Number(process.env.BENCH_HTTP_RATE);

// Refuse a stale build (the servers import dist/ directly).
const nodeAdapter = await built<typeof import('../../src/http.js')>('http');
await built('express');
await built('fastify');

/**
 * Sluice's own CPU per request, in this process before any server starts: the node:http adapter
 * (engine, header writes on a real ServerResponse, the promise it returns) called in a loop on one
 * request. No sockets, so it is much steadier than the HTTP figures on a busy machine; it is the
 * figure that profiling work on src/http moves.
 */
async function inProcess(): Promise<void> {
  const req = new IncomingMessage(new Socket());
  Object.defineProperty(req.socket, 'remoteAddress', { value: '127.0.0.1' });
  Object.assign(req, { url: '/', method: 'GET', headers: { host: '127.0.0.1', 'user-agent': 'autocannon' } });
  const res = new ServerResponse(req);
  const limiters = (['retry-after', 'legacy', 'ietf'] as const).map((headerMode) => ({
    headerMode,
    limit: nodeAdapter.rateLimit({ requestsAllowed: BIG, timeWindowMinutes: 1, headerMode, logger: false }),
    ns: [] as number[],
  }));
  const n = 100_000;
  for (let round = 0; round < 7; round++) {
    for (const l of limiters) {
      const before = process.cpuUsage();
      for (let i = 0; i < n; i++) await l.limit(req, res);
      const used = process.cpuUsage(before);
      l.ns.push(((used.user + used.system) * 1000) / n);
    }
  }
  console.log('in-process, node:http adapter, Sluice CPU per request (median [min..max] of 7 rounds of 100k):');
  for (const l of limiters) console.log(`  headerMode ${l.headerMode.padEnd(12)} ${summary(l.ns, (x) => `${Math.round(x)} ns`)}`);
}

const BIG = 1_000_000_000;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const summary = (xs: number[], fmt: (x: number) => string) => `${fmt(median(xs))} [${fmt(Math.min(...xs))}..${fmt(Math.max(...xs))}]`;

await inProcess();
console.log();

const servers = new URL('../support/http-servers.mjs', import.meta.url).href;

/** Instructions (valgrind `I refs`) of one server process answering `n` requests, start-up included. */
async function instructions(c: Contender, n: number): Promise<number> {
  const dist = distOf(c);
  const proc = spawn('valgrind', ['--tool=cachegrind', '--cache-sim=no', '--cachegrind-out-file=/dev/null', process.execPath, fileURLToPath(servers), variantOf(c)], {
    env: dist === undefined ? process.env : { ...process.env, SLUICE_DIST: dist },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m !== null) resolve(m[1] as string);
    });
    proc.once('exit', (code) => reject(new Error(`${c} exited ${code}: ${err.slice(-500)}`)));
  });
  // autocannon's `amount` (requests in all) overrides `duration`, the bound if a server stalls.
  const amount: object = { amount: n };
  const r = await autocannon({ url, connections: 10, duration: 600, pipelining: 1, ...amount });
  if (r.non2xx > 0) throw new Error(`${c}: ${r.non2xx} non-2xx`);
  proc.kill('SIGINT');
  await exited;
  const m = /I\s+refs:\s+([\d,]+)/.exec(err);
  if (m === null) throw new Error(`${c}: no instruction count in valgrind's output`);
  return Number((m[1] as string).replaceAll(',', ''));
}

if (process.env.BENCH_HTTP_COUNT === 'instructions') {
  const n1 = Number(process.env.BENCH_HTTP_N1 ?? 4000);
  const n2 = Number(process.env.BENCH_HTTP_N2 ?? 24000);
  const jobs = Number(process.env.BENCH_HTTP_JOBS ?? 2);
  const perRequest = new Map<Contender, number>();
  const queue = [...variants];
  console.log(`user-space instructions per request under valgrind: (I(${n2}) - I(${n1})) / ${n2 - n1}, 10 connections`);
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      for (let c = queue.shift(); c !== undefined; c = queue.shift()) {
        const i1 = await instructions(c, n1);
        const i2 = await instructions(c, n2);
        perRequest.set(c, (i2 - i1) / (n2 - n1));
        console.log(`  ${c.padEnd(26)} ${Math.round((i2 - i1) / (n2 - n1)).toString().padStart(7)} instructions/request`);
      }
    }),
  );
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
  const line = (label: string, a: Contender, b: Contender, f: (a: number, b: number) => string) => {
    const x = perRequest.get(a);
    const y = perRequest.get(b);
    if (x !== undefined && y !== undefined) console.log(`  ${label.padEnd(52)} ${f(x, y)}`);
  };
  const over = (x: number, y: number) => pct(x / y - 1);
  const times = (x: number, y: number) => `${(y / x).toFixed(2)}x (peer / sluice)`;
  console.log('\nratios:');
  for (const s of ['', '@base'] as const) {
    line(`node:http + sluice${s} vs bare (target <= 5%)`, `node-sluice${s}`, 'node-bare', over);
    line(`node:http + sluice${s} (legacy) vs bare`, `node-sluice-legacy${s}`, 'node-bare', over);
    line(`node:http + sluice${s} vs floor`, `node-sluice${s}`, 'node-floor', over);
    line(`fastify: @fastify/rate-limit vs sluice${s} (target >= 1.1x)`, `fastify-sluice${s}`, 'fastify-rate-limit', times);
    line(`express: express-rate-limit vs sluice${s} (target >= 1.3x)`, `express-sluice${s}`, 'express-rate-limit', times);
    line(`fastify + sluice${s} vs bare`, `fastify-sluice${s}`, 'fastify-bare', over);
    line(`express + sluice${s} vs bare`, `express-sluice${s}`, 'express-bare', over);
  }
  line('node:http floor vs bare', 'node-floor', 'node-bare', over);
  line('fastify floor vs bare', 'fastify-floor', 'fastify-bare', over);
  line('fastify + @fastify/rate-limit vs bare', 'fastify-rate-limit', 'fastify-bare', over);
  line('express floor vs bare', 'express-floor', 'express-bare', over);
  line('express + express-rate-limit vs bare', 'express-rate-limit', 'express-bare', over);
  for (const v of ALL) if (v.includes('sluice')) line(`${v}: this tree vs base`, v, `${v}@base`, over);
  process.exit(0);
}

const running = new Map<Contender, { proc: ChildProcess; port: number }>();
for (const v of variants) {
  // forkRole passes this process's environment on: the base build is named there for its fork only.
  const dist = distOf(v);
  if (dist !== undefined) process.env.SLUICE_DIST = dist;
  running.set(v, await forkRole(servers, variantOf(v)));
  delete process.env.SLUICE_DIST;
}

const load = (port: number, ms: number) =>
  autocannon({ url: `http://127.0.0.1:${port}/`, connections, duration: ms / 1000, pipelining: 1, ...(rate === undefined ? {} : { overallRate: rate }) });

async function measure(v: Contender): Promise<Sample> {
  const { proc, port } = running.get(v) as { proc: ChildProcess; port: number };
  const before = await cpuOf(proc);
  const r = await load(port, measureMs);
  const cpu = (await cpuOf(proc)) - before;
  if (r.non2xx > 0 || r.errors > 0) console.log(`  ! ${v}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return { rps: r.requests.average, cpuUs: cpu / r.requests.total, p99: r.latency.p99 };
}

try {
  for (const v of variants) await load((running.get(v) as { port: number }).port, 2000); // warm-up: JIT, connections
  const samples = new Map<Contender, Sample[]>(variants.map((v) => [v, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const v of variants) {
      const s = await measure(v);
      (samples.get(v) as Sample[]).push(s);
      console.log(`round ${round} ${v.padEnd(20)} ${Math.round(s.rps).toString().padStart(7)} req/s  ${s.cpuUs.toFixed(1).padStart(6)} µs CPU/req  p99 ${s.p99} ms`);
    }
  }

  const perRound = (a: Contender, b: Contender, f: (x: Sample, y: Sample) => number) => {
    const sa = samples.get(a);
    const sb = samples.get(b);
    return sa === undefined || sb === undefined ? undefined : sa.map((x, i) => f(x, sb[i] as Sample));
  };
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
  const times = (x: number) => `${x.toFixed(2)}x`;

  console.log(`\nmedian [min..max] of ${rounds} interleaved rounds, ${measureMs} ms each, ${connections} connections, ${rate === undefined ? 'as fast as served' : `${rate} req/s offered`}, loopback:`);
  for (const v of variants) {
    const s = samples.get(v) as Sample[];
    console.log(`  ${v.padEnd(20)} ${summary(s.map((x) => x.rps), (x) => String(Math.round(x)))} req/s   ${summary(s.map((x) => x.cpuUs), (x) => x.toFixed(1))} µs CPU/req`);
  }
  console.log('\nratios (per round, then median [min..max]):');
  const overhead = (label: string, sluice: Contender, bare: Contender, target: string) => {
    // Overhead: extra CPU per request, and requests/s lost (positive = slower than without).
    const cpu = perRound(sluice, bare, (s, b) => s.cpuUs / b.cpuUs - 1);
    const rps = perRound(sluice, bare, (s, b) => 1 - s.rps / b.rps);
    if (cpu === undefined || rps === undefined) return;
    console.log(`  ${label}: CPU/req ${summary(cpu, pct)}, req/s lost ${summary(rps, pct)}${target}`);
  };
  const versus = (label: string, sluice: Contender, peer: Contender, target: string) => {
    const rps = perRound(sluice, peer, (s, p) => s.rps / p.rps);
    const cpu = perRound(sluice, peer, (s, p) => p.cpuUs / s.cpuUs);
    if (cpu === undefined || rps === undefined) return;
    console.log(`  ${label}: req/s ${summary(rps, times)}, CPU/req (peer / sluice) ${summary(cpu, times)}${target}`);
  };
  overhead('node:http + policy vs no policy (default headers)', 'node-sluice', 'node-bare', ' (target <= 5%)');
  overhead('node:http + policy vs no policy (legacy headers) ', 'node-sluice-legacy', 'node-bare', '');
  versus('fastify: sluice vs @fastify/rate-limit (legacy X-RateLimit-* both)', 'fastify-sluice', 'fastify-rate-limit', ' (target >= 1.1x)');
  versus('express: sluice vs express-rate-limit (legacy X-RateLimit-* both)', 'express-sluice', 'express-rate-limit', ' (target >= 1.3x)');
  overhead('fastify + sluice vs bare fastify           ', 'fastify-sluice', 'fastify-bare', '');
  overhead('fastify + @fastify/rate-limit vs bare      ', 'fastify-rate-limit', 'fastify-bare', '');
  overhead('express + sluice vs bare express           ', 'express-sluice', 'express-bare', '');
  overhead('express + express-rate-limit vs bare       ', 'express-rate-limit', 'express-bare', '');
  overhead('node:http floor vs bare                    ', 'node-floor', 'node-bare', '');
  overhead('node:http + sluice vs floor                ', 'node-sluice', 'node-floor', '');
  overhead('fastify floor vs bare                      ', 'fastify-floor', 'fastify-bare', '');
  overhead('express floor vs bare                      ', 'express-floor', 'express-bare', '');
  for (const v of ALL) if (v.includes('sluice')) overhead(`${v}: this tree vs base`.padEnd(43), v, `${v}@base`, '');
} finally {
  for (const { proc } of running.values()) proc.kill();
}
