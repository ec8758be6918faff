/**
 * One worker process of the shared-budget spec: sends JOBS calls through a client whose budgets
 * live in Redis (RedisStore, prefix PREFIX), then prints a JSON summary on stdout.
 */
import { createClient } from '../../../src/client.js';
import { RedisStore } from '../../../src/redis.js';

const store = new RedisStore({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: process.env.PREFIX as string });
const client = createClient({
  baseUrl: process.env.SERVER_URL as string,
  store,
  groups: { api: { limit: Number(process.env.LIMIT), windowMs: Number(process.env.WINDOW_MS) } },
  defaultGroup: 'api',
  marginMs: Number(process.env.MARGIN_MS),
  concurrency: 4,
});
const jobs = Number(process.env.JOBS);
const statuses = await Promise.all(Array.from({ length: jobs }, (_, i) => client.fetch(`/api/${process.pid}/${i}`).then(async (r) => (await r.text(), r.status))));
await client.close();
await store.close();
process.stdout.write(JSON.stringify({ ok: statuses.filter((s) => s === 200).length, other: statuses.filter((s) => s !== 200) }));
