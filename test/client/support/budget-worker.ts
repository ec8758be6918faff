/**
 * One worker process of the shared-budget specs: sends JOBS calls through a client whose budgets
 * live in Redis (RedisStore, prefix PREFIX), then prints a JSON summary on stdout. LIMIT/WINDOW_MS
 * configure the `api` group (unset: learn it); MARGIN_MS unset keeps the default margin.
 */
import { createClient } from '../../../src/client.js';
import { RedisStore } from '../../../src/redis.js';

const env = process.env;
// A loaded CI machine can stall Redis for a while: these specs are about pacing, not latency.
const store = new RedisStore({ url: env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: env.PREFIX as string, timeoutMs: 5000 });
const client = createClient({
  baseUrl: env.SERVER_URL as string,
  store,
  ...(env.LIMIT ? { groups: { api: { limit: Number(env.LIMIT), windowMs: Number(env.WINDOW_MS) } } } : {}),
  defaultGroup: 'api',
  ...(env.MARGIN_MS ? { marginMs: Number(env.MARGIN_MS) } : {}),
  concurrency: Number(env.CONCURRENCY ?? 4),
});
const jobs = Number(env.JOBS);
const statuses = await Promise.all(Array.from({ length: jobs }, (_, i) => client.fetch(`/api/${process.pid}/${i}`).then(async (r) => (await r.text(), r.status))));
await store.close();
// The `api` lane's budget at the end (what was configured, or learned down from refusals).
const api = client.lanes().find((l) => l.group === 'api');
const limit = api?.limit === undefined ? null : (api.limit.limit * 1000) / api.limit.windowMs;
await client.close();
process.stdout.write(JSON.stringify({ ok: statuses.filter((s) => s === 200).length, other: statuses.filter((s) => s !== 200), limitPerSecond: limit }));
