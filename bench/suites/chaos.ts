/**
 * Chaos: the gateway on Redis under a bounded load while Redis fails, once per `onStoreError`
 * mode. A redis-server of our own (port 7150) is SIGKILLed for 5 s then restarted empty on the
 * same port (`kill`), or SIGSTOPped for 5 s then SIGCONTinued (`freeze`: the connection stays
 * open and nothing answers, the case the circuit breaker is for).
 *
 * Load: 16 closed-loop clients on `/bulk` (a limit nothing reaches), and a probe on `/probe`
 * every 200 ms: a fresh client id sends 7 requests to a 5-per-minute policy. A probe is exact
 * when it gets exactly 5 x 200 then 429s AND its counter is in Redis (the decision was shared,
 * not local). Reported per phase (before / outage / after): requests answered, error rate
 * (neither 200 nor 429), p99; and the time from Redis answering again to the first exact probe.
 *
 * The gateway and the upstream run in their own processes; the load runs here.
 * A 10 s warm-up comes first (the gateway runs through tsx: under load its first seconds are
 * several times slower than later, which would flatter every phase after the fault).
 * Env: BENCH_CHAOS_OUTAGE_MS (default 5000), BENCH_CHAOS_WARMUP_MS (default 10000),
 * BENCH_CHAOS_SCENARIOS (e.g. "kill:local,freeze:allow").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { forkRole } from '../support/roles.js';
import { hashIdentity } from '../../src/http/identify.js';

const role = process.argv[2];
const REDIS_PORT = 7150;
const OUTAGE_MS = Number(process.env.BENCH_CHAOS_OUTAGE_MS ?? 5000);
const CLIENTS = 16;
const PROBE_LIMIT = 5;
const WARMUP_MS = Number(process.env.BENCH_CHAOS_WARMUP_MS ?? 10_000);

type Mode = 'allow' | 'deny' | 'local';
type Fault = 'kill' | 'freeze';
interface Scenario {
  fault: Fault;
  mode: Mode;
  /** Breaker failure threshold (1e6: in effect no breaker). */
  threshold: number;
}

async function child(): Promise<void> {
  const send = (port: number) => process.send?.({ port });
  if (role === 'upstream') {
    const s = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
      res.end('ok');
    });
    s.keepAliveTimeout = 60_000;
    s.listen(0, '127.0.0.1', () => send((s.address() as AddressInfo).port));
    return;
  }
  const [, , , upstreamUrl, mode, threshold] = process.argv;
  const { startGateway } = await import('../../src/gateway/server.js');
  const { validateConfig } = await import('../../src/gateway/config.js');
  const onStoreError = mode as Mode;
  const gw = await startGateway({
    port: 0,
    logger: { info: () => {}, warn: () => {}, error: () => {} },
    config: validateConfig(
      {
        store: { type: 'redis', url: `redis://127.0.0.1:${REDIS_PORT}`, prefix: 'chaos:', timeoutMs: 250, breaker: { failureThreshold: Number(threshold) } },
        upstreams: { api: { url: upstreamUrl } },
        policies: {
          bulk: { rateLimitBy: 'header', headerName: 'x-client', requestsAllowed: 1_000_000_000, timeWindowMinutes: 1, onStoreError },
          probe: { rateLimitBy: 'header', headerName: 'x-client', requestsAllowed: PROBE_LIMIT, timeWindowMinutes: 1, onStoreError },
        },
        routes: [
          { path: '/bulk', upstream: 'api', policies: ['bulk'] },
          { path: '/probe', upstream: 'api', policies: ['probe'] },
        ],
      },
      {},
    ),
  });
  send(Number(new URL(gw.url).port));
}

async function ping(): Promise<boolean> {
  const c = new Redis({ port: REDIS_PORT, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, connectTimeout: 200 });
  c.on('error', () => {});
  try {
    await c.connect();
    return (await c.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

function redisServer(dir: string): ChildProcess {
  return spawn('redis-server', ['--port', String(REDIS_PORT), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
}

async function startRedis(dir: string): Promise<ChildProcess> {
  const p = redisServer(dir);
  while (!(await ping())) await new Promise((r) => setTimeout(r, 20));
  return p;
}

interface Sample {
  t: number;
  status: number; // 0: no HTTP answer
  ms: number;
}

const p99 = (xs: number[]) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] as number;
};

async function run(sc: Scenario, upstreamUrl: string, dir: string) {
  let redis = await startRedis(dir);
  const gw = await forkRole(import.meta.url, 'gateway', [upstreamUrl, sc.mode, String(sc.threshold)]);
  const pool = new Pool(`http://127.0.0.1:${gw.port}`, { connections: CLIENTS + 2, pipelining: 1 });
  const raw = new Redis({ port: REDIS_PORT, host: '127.0.0.1', maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 50 });
  raw.on('error', () => {});
  const samples: Sample[] = [];
  const probes: { t: number; end: number; exact: boolean; why: string }[] = [];
  let stop = false;
  const get = async (path: string, client: string): Promise<number> => {
    try {
      const r = await pool.request({ path, method: 'GET', headers: { 'x-client': client }, headersTimeout: 10_000 });
      await r.body.dump();
      return r.statusCode;
    } catch {
      return 0;
    }
  };
  const loops = Array.from({ length: CLIENTS }, async (_, i) => {
    while (!stop) {
      const t0 = performance.now();
      const status = await get('/bulk', `bulk-${i}`);
      samples.push({ t: Date.now(), status, ms: performance.now() - t0 });
    }
  });
  let probeId = 0;
  const probeLoop = (async () => {
    while (!stop) {
      const t = Date.now();
      const id = `probe-${sc.fault}-${sc.mode}-${probeId++}-${t}`;
      const statuses: number[] = [];
      for (let i = 0; i < PROBE_LIMIT + 2; i++) statuses.push(await get('/probe', id));
      const pattern = statuses.every((s, i) => s === (i < PROBE_LIMIT ? 200 : 429));
      let inRedis = false;
      if (pattern) {
        try {
          // Header values are stored hashed (they may be credentials).
          const [, keys] = await raw.scan('0', 'MATCH', `chaos:*${hashIdentity(id)}*`, 'COUNT', 100_000);
          inRedis = keys.length > 0;
        } catch {
          inRedis = false;
        }
      }
      probes.push({ t, end: Date.now(), exact: pattern && inRedis, why: pattern ? (inRedis ? '' : 'not in Redis') : statuses.join(' ') });
      await new Promise((r) => setTimeout(r, 200));
    }
  })();

  // Warm-up (JIT, connections): nothing before `measureFrom` is reported.
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const measureFrom = Date.now();
  await new Promise((r) => setTimeout(r, 3000));
  const faultAt = Date.now();
  if (sc.fault === 'kill') redis.kill('SIGKILL');
  else redis.kill('SIGSTOP');
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  const healAt = Date.now();
  if (sc.fault === 'kill') {
    await new Promise<void>((r) => (redis.exitCode !== null || redis.signalCode !== null ? r() : redis.once('exit', () => r())));
    redis = await startRedis(dir);
  } else {
    redis.kill('SIGCONT');
  }
  const answeringAt = Date.now();
  await new Promise((r) => setTimeout(r, 6000));
  stop = true;
  await Promise.all([...loops, probeLoop]);
  const endAt = Date.now();
  await pool.close();
  raw.disconnect();
  gw.proc.kill();
  redis.kill('SIGKILL');

  const phase = (from: number, to: number) => {
    const s = samples.filter((x) => x.t >= from && x.t < to);
    const errors = s.filter((x) => x.status !== 200 && x.status !== 429).length;
    return { answered: s.filter((x) => x.status !== 0).length, total: s.length, errorRate: s.length ? errors / s.length : 0, p99: p99(s.map((x) => x.ms)), rps: s.length / ((to - from) / 1000) };
  };
  const firstExact = probes.find((p) => p.t >= answeringAt && p.exact);
  // Probes wholly before the fault (one that runs into the outage is an outage probe).
  const before = probes.filter((p) => p.t >= measureFrom && p.end < faultAt);
  const exactBefore = before.every((p) => p.exact);
  if (!exactBefore) console.log('    inexact probes before the fault:', before.filter((p) => !p.exact).map((p) => p.why));
  return {
    before: phase(faultAt - 3000, faultAt),
    outage: phase(faultAt, healAt),
    after: phase(answeringAt, endAt),
    exactBefore,
    timeToExactMs: firstExact === undefined ? undefined : firstExact.t - answeringAt,
    exactAfterwards: probes.filter((p) => p.t >= (firstExact?.t ?? Infinity)).every((p) => p.exact),
  };
}

async function main(): Promise<void> {
  const wanted = process.env.BENCH_CHAOS_SCENARIOS?.split(',').map((s) => s.trim());
  const all: (Scenario & { name: string })[] = [
    { name: 'kill:allow', fault: 'kill', mode: 'allow', threshold: 5 },
    { name: 'kill:deny', fault: 'kill', mode: 'deny', threshold: 5 },
    { name: 'kill:local', fault: 'kill', mode: 'local', threshold: 5 },
    { name: 'freeze:allow', fault: 'freeze', mode: 'allow', threshold: 5 },
    { name: 'freeze:allow:no-breaker', fault: 'freeze', mode: 'allow', threshold: 1_000_000 },
    { name: 'freeze:local', fault: 'freeze', mode: 'local', threshold: 5 },
  ];
  const scenarios = all.filter((s) => wanted === undefined || wanted.includes(s.name));
  const up = await forkRole(import.meta.url, 'upstream');
  const upstreamUrl = `http://127.0.0.1:${up.port}`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-chaos-'));
  console.log(`Chaos: gateway on redis-server :${REDIS_PORT}, ${CLIENTS} closed-loop clients + a 5/min probe every 200 ms; fault ${OUTAGE_MS / 1000} s; timeoutMs 250, breaker 5 failures / 0.5 s probe.`);
  const f = (n: number) => (Number.isNaN(n) ? '   -' : n.toFixed(0).padStart(4));
  const pct = (n: number) => `${(n * 100).toFixed(1)}%`.padStart(6);
  try {
    for (const sc of scenarios) {
      const r = await run(sc, upstreamUrl, dir);
      console.log(`\n  ${sc.name}`);
      for (const [name, p] of [['before', r.before], ['outage', r.outage], ['after', r.after]] as const) {
        console.log(`    ${name.padEnd(7)} answered ${String(p.answered).padStart(6)}/${String(p.total).padEnd(6)} ${f(p.rps)} req/s  errors ${pct(p.errorRate)}  p99 ${f(p.p99)} ms`);
      }
      console.log(`    exact before the fault: ${r.exactBefore ? 'yes' : 'NO'}; time to exact limits after Redis answers: ${r.timeToExactMs === undefined ? 'never (within 6 s)' : `${r.timeToExactMs} ms`}; exact from then on: ${r.exactAfterwards ? 'yes' : 'NO'}`);
    }
  } finally {
    up.proc.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (role === undefined) await main();
else await child();
