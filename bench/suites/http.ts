/**
 * HTTP layer: requests/s of one route served by a child process, loaded by autocannon over
 * loopback from this process. Every limited variant limits by client IP with a limit so high that
 * nothing is refused, so the policy's cost per request is what is measured.
 *
 * Variants: node:http without a policy / with a Sluice policy (memory store, default headers and
 * legacy X-RateLimit headers); Express + express-rate-limit vs Express + sluice/express; Fastify +
 * @fastify/rate-limit vs Fastify + sluice/fastify (peers configured to send the same X-RateLimit
 * headers as Sluice's `legacy` mode). Ratios printed at the end.
 *
 * Env: BENCH_HTTP_MS (measure per round, default 5000), BENCH_ROUNDS (default 2, best kept),
 * BENCH_CONNECTIONS (default 50).
 */
import { fork } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { autocannon } from '../support/autocannon.js';

const VARIANTS = [
  'node-bare',
  'node-sluice',
  'node-sluice-legacy',
  'express-bare',
  'express-rate-limit',
  'express-sluice',
  'fastify-bare',
  'fastify-rate-limit',
  'fastify-sluice',
] as const;
type Variant = (typeof VARIANTS)[number];

const BIG = 1_000_000_000;


async function serve(variant: Variant): Promise<number> {
  const hello = 'hello world';
  let server: Server;
  switch (variant) {
    case 'node-bare':
      server = createServer((_req, res) => res.end(hello));
      break;
    case 'node-sluice':
    case 'node-sluice-legacy': {
      const { rateLimit } = await import('../../src/http.js');
      const limit = rateLimit({ requestsAllowed: BIG, timeWindowMinutes: 1, logger: false, ...(variant === 'node-sluice-legacy' ? { headerMode: 'legacy' as const } : {}) });
      server = createServer(async (req, res) => {
        if (await limit(req, res)) res.end(hello);
      });
      break;
    }
    case 'express-bare':
    case 'express-rate-limit':
    case 'express-sluice': {
      const express = (await import('express')).default;
      const app = express();
      app.disable('x-powered-by');
      app.disable('etag');
      if (variant === 'express-rate-limit') {
        const { rateLimit } = await import('express-rate-limit');
        app.use(rateLimit({ windowMs: 60_000, limit: BIG, legacyHeaders: true, standardHeaders: false }));
      } else if (variant === 'express-sluice') {
        const { rateLimit } = await import('../../src/express.js');
        app.use(rateLimit({ requestsAllowed: BIG, timeWindowMinutes: 1, headerMode: 'legacy', logger: false }));
      }
      app.get('/', (_req, res) => {
        res.send(hello);
      });
      server = createServer(app);
      break;
    }
    default: {
      const Fastify = (await import('fastify')).default;
      const app = Fastify({ logger: false });
      if (variant === 'fastify-rate-limit') {
        await app.register((await import('@fastify/rate-limit')).default, { max: BIG, timeWindow: 60_000 });
      } else if (variant === 'fastify-sluice') {
        await app.register((await import('../../src/fastify.js')).sluiceRateLimit, { requestsAllowed: BIG, timeWindowMinutes: 1, headerMode: 'legacy', logger: false });
      }
      app.get('/', async () => hello);
      await app.listen({ port: 0, host: '127.0.0.1' });
      return (app.server.address() as AddressInfo).port;
    }
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

if (process.argv[2] === 'serve') {
  const port = await serve(process.argv[3] as Variant);
  process.send?.({ port });
} else {
  const measureMs = Number(process.env.BENCH_HTTP_MS ?? 5000);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
  const self = fileURLToPath(import.meta.url);

  const load = (port: number, ms: number) =>
    autocannon({ url: `http://127.0.0.1:${port}/`, connections, duration: ms / 1000, pipelining: 1 }).then((r) => ({
      rps: r.requests.average,
      non2xx: r.non2xx,
      errors: r.errors,
      p99: r.latency.p99,
    }));

  const best = new Map<Variant, { rps: number; p99: number }>();
  for (let round = 0; round < rounds; round++) {
    for (const v of VARIANTS) {
      const child = fork(self, ['serve', v], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const port = await new Promise<number>((resolve, reject) => {
        child.once('message', (m) => resolve((m as { port: number }).port));
        child.once('exit', (code) => reject(new Error(`server ${v} exited with ${code}`)));
      });
      await load(port, 1500); // warm-up (JIT, connection setup)
      const r = await load(port, measureMs);
      child.kill();
      if (r.non2xx > 0 || r.errors > 0) console.log(`  ! ${v}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      const prev = best.get(v);
      if (prev === undefined || r.rps > prev.rps) best.set(v, { rps: r.rps, p99: r.p99 });
      console.log(`round ${round + 1} ${v.padEnd(20)} ${Math.round(r.rps).toString().padStart(7)} req/s  p99 ${r.p99} ms`);
    }
  }
  const rps = (v: Variant) => (best.get(v) as { rps: number }).rps;
  console.log(`\nbest of ${rounds} rounds, ${measureMs} ms each, ${connections} connections, loopback:`);
  for (const v of VARIANTS) console.log(`  ${v.padEnd(20)} ${Math.round(rps(v)).toString().padStart(7)} req/s`);
  const pct = (a: number, b: number) => `${((1 - a / b) * 100).toFixed(1)}%`;
  const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
  console.log('\nratios:');
  console.log(`  node:http policy overhead (default headers): ${pct(rps('node-sluice'), rps('node-bare'))} (target <= 5%)`);
  console.log(`  node:http policy overhead (legacy headers):  ${pct(rps('node-sluice-legacy'), rps('node-bare'))}`);
  console.log(`  express: sluice / express-rate-limit = ${x(rps('express-sluice'), rps('express-rate-limit'))} (target > 1)`);
  console.log(`  fastify: sluice / @fastify/rate-limit = ${x(rps('fastify-sluice'), rps('fastify-rate-limit'))} (target > 1)`);
  console.log(`  express overhead: sluice ${pct(rps('express-sluice'), rps('express-bare'))}, express-rate-limit ${pct(rps('express-rate-limit'), rps('express-bare'))}`);
  console.log(`  fastify overhead: sluice ${pct(rps('fastify-sluice'), rps('fastify-bare'))}, @fastify/rate-limit ${pct(rps('fastify-rate-limit'), rps('fastify-bare'))}`);
}
