/**
 * Real servers on loopback, one factory per adapter, all built from the same route table so the
 * conformance suite can prove identical behaviour. The handler answers with the status given in
 * the `x-test-status` request header (default 200) and body `ok`; the "auth step" is the
 * `x-test-user` / `x-test-tier` request headers, handed to the adapters through `getUser`. A
 * request's `x-test-tokens` comes back as the response header `x-tokens-used` (costs read from the
 * response).
 */
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rateLimit as expressRateLimit } from '../../src/express.js';
import { rateLimitHooks } from '../../src/fastify.js';
import { rateLimiter as honoRateLimiter } from '../../src/hono.js';
import { rateLimit as nodeRateLimit } from '../../src/http.js';
import type { RateLimitPolicyOptions } from '../../src/http/options.js';
import type { HttpUser } from '../../src/http/request.js';
import type { EngineSettings } from '../../src/adapters/common.js';
import type { PolicyEngineOptions } from '../../src/http/engine.js';

/** Adapter options without the framework-specific hooks. */
export type RouteOptions = (RateLimitPolicyOptions & EngineSettings) | (EngineSettings & { policies: PolicyEngineOptions['policies'] });

export interface Route {
  path: string;
  options: RouteOptions;
}

export interface Running {
  /** Base URL, e.g. http://127.0.0.1:1234 */
  url: string;
  close(): Promise<void>;
}

export type Factory = (routes: Route[], host?: string) => Promise<Running>;

function userFrom(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): HttpUser | undefined {
  const sub = headers['x-test-user'];
  if (typeof sub !== 'string') return undefined;
  const tier = headers['x-test-tier'];
  return typeof tier === 'string' ? { sub, tier } : { sub };
}
const statusFrom = (v: string | string[] | undefined) => (typeof v === 'string' ? Number(v) : 200);
/** The response headers a handler sends for a request: `x-tokens-used` from `x-test-tokens`. */
const headersFrom = (v: string | string[] | undefined): Record<string, string> => (typeof v === 'string' ? { 'x-tokens-used': v } : {});

function listen(server: Server, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as AddressInfo;
      resolve(`http://${host.includes(':') ? `[${host}]` : host}:${port}`);
    });
  });
}
function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

export const factories: Record<'node' | 'express' | 'fastify' | 'hono', Factory> = {
  async node(routes, host = '127.0.0.1') {
    const limiters = routes.map((r) => ({ path: r.path, limit: nodeRateLimit({ ...r.options, getUser: (req) => userFrom(req.headers) }) }));
    const server = createServer(async (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const l = limiters.find((x) => x.path === path);
      if (l === undefined) return void res.writeHead(404).end();
      if (!(await l.limit(req, res))) return;
      res.writeHead(statusFrom(req.headers['x-test-status']), headersFrom(req.headers['x-test-tokens'])).end('ok');
    });
    const url = await listen(server, host);
    return { url, close: () => closeServer(server) };
  },
  async express(routes, host = '127.0.0.1') {
    const app = express();
    for (const r of routes) {
      app.get(r.path, expressRateLimit({ ...r.options, getUser: (req) => userFrom(req.headers) }), (req, res) => {
        res.status(statusFrom(req.headers['x-test-status'])).set(headersFrom(req.headers['x-test-tokens'])).send('ok');
      });
    }
    const server = createServer(app);
    const url = await listen(server, host);
    return { url, close: () => closeServer(server) };
  },
  async fastify(routes, host = '127.0.0.1') {
    const app = Fastify();
    for (const r of routes) {
      const hooks = rateLimitHooks({ ...r.options, getUser: (req) => userFrom(req.headers) });
      app.get(r.path, { onRequest: hooks.onRequest, ...(hooks.onResponse ? { onResponse: hooks.onResponse } : {}) }, async (req, reply) => {
        return reply.code(statusFrom(req.headers['x-test-status'])).headers(headersFrom(req.headers['x-test-tokens'])).send('ok');
      });
    }
    await app.listen({ port: 0, host });
    const { port } = app.server.address() as AddressInfo;
    return { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, close: () => app.close() };
  },
  async hono(routes, host = '127.0.0.1') {
    const app = new Hono();
    for (const r of routes) {
      app.get(r.path, honoRateLimiter({ ...r.options, getUser: (c) => userFrom(c.req.header()) }), (c) => {
        return new Response('ok', { status: statusFrom(c.req.header('x-test-status')), headers: headersFrom(c.req.header('x-test-tokens')) });
      });
    }
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: host }, () => resolve(s as Server));
    });
    const { port } = server.address() as AddressInfo;
    return { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, close: () => closeServer(server) };
  },
};
