/**
 * Rate-limited servers built from software we did not write, as their users configure them:
 * Express 5 + express-rate-limit 8 (each `standardHeaders` draft, and the legacy `X-RateLimit-*`),
 * Fastify 5 + @fastify/rate-limit (its default `x-ratelimit-*` headers and `enableDraftSpec`), and
 * Sluice's own gateway (`startGateway`, a policy with IETF headers) in front of a plain upstream.
 * Each allows `limit` calls per 1 s window.
 */
import { createServer } from 'node:http';
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import Fastify from 'fastify';
import fastifyRateLimit from '@fastify/rate-limit';
import { startGateway } from '../../../../src/gateway/server.js';
import { validateConfig } from '../../../../src/gateway/config.js';
import { closeServer, countResponses, listenLoopback, windowIdealMs, type RowServer, type ServerCounts } from './row-server.js';

export type ExpressHeaders = 'draft-6' | 'draft-7' | 'draft-8' | 'legacy';

export async function startExpressRateLimit(headers: ExpressHeaders, limit: number, windowMs = 1000): Promise<RowServer> {
  const app = express();
  app.use(
    rateLimit({
      windowMs,
      limit,
      standardHeaders: headers === 'legacy' ? false : headers,
      legacyHeaders: headers === 'legacy',
    }),
  );
  app.use((_req, res) => {
    res.json({ ok: true });
  });
  const server = createServer(app);
  const counts = countResponses(server);
  const url = await listenLoopback(server);
  return { url, counts, idealMs: windowIdealMs(limit, windowMs), ratePerSec: (limit * 1000) / windowMs, close: () => closeServer(server) };
}

export async function startFastifyRateLimit(draftSpec: boolean, limit: number, windowMs = 1000): Promise<RowServer> {
  const app = Fastify();
  await app.register(fastifyRateLimit, { max: limit, timeWindow: windowMs, enableDraftSpec: draftSpec });
  app.get('/*', async () => ({ ok: true }));
  const counts = countResponses(app.server);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, counts, idealMs: windowIdealMs(limit, windowMs), ratePerSec: (limit * 1000) / windowMs, close: () => app.close() };
}

/** Sum of a counter's samples in Prometheus text, for the samples whose labels include `label`. */
function sumSamples(text: string, metric: string, label: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${metric}{`) && line.includes(label)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * The gateway's 429s are counted by its own metrics (it owns its HTTP server); the upstream counts
 * the calls that got through.
 */
export async function startSluiceGateway(limit: number, windowMs = 1000): Promise<RowServer> {
  const upstream = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  const upstreamCounts = countResponses(upstream);
  const upstreamUrl = await listenLoopback(upstream);
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const gw = await startGateway({
    logger: quiet,
    port: 0,
    env: {},
    config: validateConfig(
      {
        upstreams: { api: { url: upstreamUrl } },
        policies: { api: { requestsAllowed: limit, timeWindowSeconds: windowMs / 1000, rateLimitBy: 'all', headerMode: 'ietf' } },
        routes: [{ path: '/*', upstream: 'api', policies: ['api'] }],
        observability: { logs: { enabled: false }, metrics: {} },
      },
      {},
    ),
  });
  const counts = async (): Promise<ServerCounts> => {
    const text = (await gw.observer?.metrics.text()) ?? '';
    const up = await upstreamCounts();
    return { ok: up.ok, r429: sumSamples(text, 'sluice_responses_total', 'status="429"'), other: up.other };
  };
  return {
    url: gw.url,
    counts,
    // GCRA (the gateway's default) with its default burst of `limit`: `limit` at once, then one per windowMs/limit.
    idealMs: (n) => (Math.max(0, n - limit) * windowMs) / limit,
    ratePerSec: (limit * 1000) / windowMs,
    close: async () => {
      await gw.close();
      await closeServer(upstream);
    },
  };
}
