/**
 * One small consumer module per subpath export, as a user would write it after
 * `npm install sluice` (+ the entry's peer). Type-checked in the packed-package test under
 * `moduleResolution` `node16` and `bundler`. Keys are the package.json `exports` keys.
 */
export const CONSUMERS: Record<string, { peers: string[]; source: string }> = {
  '.': {
    peers: [],
    source: `
import { createLimiter, SluiceConfigError, type Decision } from 'sluice';
const limiter = createLimiter({ limits: [{ name: 'per-second', limit: 10, windowMs: 1000 }] });
const d: Decision = await limiter.consume('user:42');
const wait: number = d.retryAfterMs;
export { wait, SluiceConfigError };
`,
  },
  './redis': {
    peers: [],
    source: `
import { createLimiter } from 'sluice';
import { RedisStore, type RedisStoreOptions } from 'sluice/redis';
const options: RedisStoreOptions = { url: 'redis://127.0.0.1:6379', prefix: 'app:' };
export const make = () => createLimiter({ limit: 100, windowMs: 60_000, store: new RedisStore(options) });
`,
  },
  './http': {
    peers: [],
    source: `
import { createServer } from 'node:http';
import { rateLimit, type PolicyResult } from 'sluice/http';
const limit = rateLimit({ requestsAllowed: 100, timeWindowMinutes: 1 });
export const server = createServer(async (req, res) => {
  if (!(await limit(req, res))) return;
  res.end('ok');
});
export type R = PolicyResult;
`,
  },
  './express': {
    peers: ['express', '@types/express'],
    source: `
import express from 'express';
import { rateLimit } from 'sluice/express';
const app = express();
app.use('/api', rateLimit({ requestsAllowed: 100, timeWindowMinutes: 1, rateLimitBy: 'ip', headerMode: 'ietf' }));
export { app };
`,
  },
  './fastify': {
    peers: ['fastify'],
    source: `
import Fastify from 'fastify';
import { sluiceRateLimit } from 'sluice/fastify';
const app = Fastify();
await app.register(sluiceRateLimit, { requestsAllowed: 100, timeWindowMinutes: 1 });
export { app };
`,
  },
  './hono': {
    peers: ['hono'],
    source: `
import { Hono } from 'hono';
import { rateLimiter } from 'sluice/hono';
const app = new Hono();
app.use('/api/*', rateLimiter({ requestsAllowed: 100, timeWindowMinutes: 1 }));
export { app };
`,
  },
  './client': {
    peers: ['bullmq'],
    source: `
import { createClient, createJobQueue, RateLimitWaitTooLongError } from 'sluice/client';
const api = createClient({ baseUrl: 'https://api.example.com', groups: { default: { limit: 10, windowMs: 1000 } } });
export const call = async () => (await api.fetch('/v1/things')).status;
export const queue = () => createJobQueue({ name: 'calls', connection: { host: '127.0.0.1' }, client: api });
export { RateLimitWaitTooLongError };
`,
  },
  './gateway': {
    peers: [],
    source: `
import { startGateway, type Gateway } from 'sluice/gateway';
export const start = (): Promise<Gateway> => startGateway({ configFile: 'sluice.yaml', watch: true, signals: true });
`,
  },
  './observability': {
    peers: [],
    source: `
import { createObserver, type Observer } from 'sluice/observability';
export const observer: Observer = createObserver({ logs: false });
`,
  },
};
