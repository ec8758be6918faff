/**
 * Child process of the multi-process test: `node --import tsx redis-hammer.ts <url> <prefix> <key>
 * <callers> <attemptsPerCaller>`. Runs `callers` concurrent loops consuming one key limited to
 * 1000 per minute (exact sliding log) and prints the number of admitted decisions as JSON.
 */
import { createLimiter } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';

const [url, prefix, key, callersArg, attemptsArg] = process.argv.slice(2);
const store = new RedisStore({ url: url as string, prefix: prefix as string, timeoutMs: 5000 });
const limiter = createLimiter({ limit: 1000, windowMs: 60_000, algorithm: 'sliding-log', store });
let admitted = 0;
let refused = 0;
// Start together with the siblings: the parent releases every child at once through stdin.
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
await Promise.all(
  Array.from({ length: Number(callersArg) }, async () => {
    for (let i = 0; i < Number(attemptsArg); i++) {
      const d = await limiter.consume(key as string);
      if (d.allowed) admitted++;
      else refused++;
    }
  }),
);
await store.close();
process.stdout.write(JSON.stringify({ admitted, refused }));
process.exit(0);
