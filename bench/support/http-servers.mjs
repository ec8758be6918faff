// The servers of the HTTP suite (bench/suites/http.ts), one variant per process. Plain JavaScript
// run by plain `node` (no TypeScript loader in the process being measured), importing the built
// package (dist/) and the peers from node_modules exactly as users run them. The suite checks that
// dist/ is not older than src/ before forking these.
//
// Usage: node bench/support/http-servers.mjs <variant>; reports { port } on IPC and answers the
// parent's 'cpu' message with this process's CPU time in µs (see bench/support/roles.ts).
// Profile one: node --cpu-prof bench/support/http-servers.mjs node-sluice (prints the port).
// SLUICE_DIST (a directory URL or path) measures another build of Sluice (an A/B against main's
// dist/ copied elsewhere; its node_modules must resolve from there, e.g. a symlink next to it).
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';

// Every limited variant limits by client IP with a limit nothing reaches in a run, over a
// one-minute window, so what is measured is the per-request cost of the limiter.
const BIG = 1_000_000_000;
const hello = 'hello world';
const dist =
  process.env.SLUICE_DIST === undefined
    ? new URL('../../dist/', import.meta.url)
    : new URL(process.env.SLUICE_DIST.endsWith('/') ? process.env.SLUICE_DIST : `${process.env.SLUICE_DIST}/`, pathToFileURL(`${process.cwd()}/`));
// The floor variants: what Sluice's behaviour costs with no limiting at all, i.e. the headers it
// always writes (`x-request-id`, plus the three legacy ones where the peers are compared) with
// fixed values, and on node:http the README handler's shape (async, one await).
const ID = '0b8e3f0c-5f7a-4d0e-9c1a-2b3c4d5e6f70';
const FLOOR_HEADERS = { 'x-request-id': ID, 'x-ratelimit-limit': String(BIG), 'x-ratelimit-remaining': String(BIG - 1), 'x-ratelimit-reset': '1764633600' };

async function serve(variant) {
  let handler;
  switch (variant) {
    case 'node-bare':
      handler = (_req, res) => res.end(hello);
      break;
    case 'node-floor': {
      const admitted = Promise.resolve(true);
      handler = async (_req, res) => {
        res.setHeader('x-request-id', ID);
        if (await admitted) res.end(hello);
      };
      break;
    }
    case 'node-sluice':
    case 'node-sluice-legacy': {
      const { rateLimit } = await import(new URL('http.js', dist).href);
      const limit = rateLimit({ requestsAllowed: BIG, timeWindowMinutes: 1, logger: false, ...(variant === 'node-sluice-legacy' ? { headerMode: 'legacy' } : {}) });
      // The README's node:http example.
      handler = async (req, res) => {
        if (await limit(req, res)) res.end(hello);
      };
      break;
    }
    case 'express-bare':
    case 'express-floor':
    case 'express-rate-limit':
    case 'express-sluice': {
      const express = (await import('express')).default;
      const app = express();
      app.disable('x-powered-by');
      app.disable('etag');
      if (variant === 'express-rate-limit') {
        const { rateLimit } = await import('express-rate-limit');
        // Its defaults spelled out: X-RateLimit-Limit/Remaining/Reset on every response, no draft headers.
        app.use(rateLimit({ windowMs: 60_000, limit: BIG, legacyHeaders: true, standardHeaders: false }));
      } else if (variant === 'express-floor') {
        app.use((_req, res, next) => {
          for (const name in FLOOR_HEADERS) res.setHeader(name, FLOOR_HEADERS[name]);
          next();
        });
      } else if (variant === 'express-sluice') {
        const { rateLimit } = await import(new URL('express.js', dist).href);
        app.use(rateLimit({ requestsAllowed: BIG, timeWindowMinutes: 1, headerMode: 'legacy', logger: false }));
      }
      app.get('/', (_req, res) => {
        res.send(hello);
      });
      handler = app;
      break;
    }
    case 'fastify-bare':
    case 'fastify-floor':
    case 'fastify-rate-limit':
    case 'fastify-sluice': {
      const Fastify = (await import('fastify')).default;
      const app = Fastify({ logger: false });
      if (variant === 'fastify-rate-limit') {
        // Its defaults: X-RateLimit-Limit/Remaining/Reset on every response.
        await app.register((await import('@fastify/rate-limit')).default, { max: BIG, timeWindow: 60_000 });
      } else if (variant === 'fastify-floor') {
        app.addHook('onRequest', (_request, reply, done) => {
          reply.headers(FLOOR_HEADERS);
          done();
        });
      } else if (variant === 'fastify-sluice') {
        const { sluiceRateLimit } = await import(new URL('fastify.js', dist).href);
        await app.register(sluiceRateLimit, { requestsAllowed: BIG, timeWindowMinutes: 1, headerMode: 'legacy', logger: false });
      }
      app.get('/', async () => hello);
      await app.listen({ port: 0, host: '127.0.0.1' });
      return app.server.address().port;
    }
    default:
      throw new Error(`unknown variant ${variant}`);
  }
  const server = createServer(handler);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server.address().port;
}

const port = await serve(process.argv[2]);
if (process.send === undefined) {
  console.log(`${process.argv[2]} listening on http://127.0.0.1:${port}/`);
  // Exit normally on Ctrl-C / kill, so `--cpu-prof` writes its profile.
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
} else {
  process.on('message', (m) => {
    if (m === 'cpu') {
      const u = process.cpuUsage();
      process.send({ cpu: u.user + u.system });
    }
  });
  process.send({ port });
}
