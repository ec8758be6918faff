import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/** A Lua script with its SHA1, run with EVALSHA and loaded on demand. */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

/** Prepare a script (computes the SHA1 Redis will know it by). */
export function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * Run `s` with EVALSHA; when Redis answers NOSCRIPT (script cache flushed, server restarted, a
 * failover to a replica that never saw it, a new cluster node) fall back to EVAL, which also
 * loads the script so the next EVALSHA hits. Done by hand rather than with `defineCommand` so
 * the same path serves a user-provided client, a Cluster, and the batching code.
 */
export async function evalScript(
  client: Redis | Cluster,
  s: Script,
  keys: readonly string[],
  argv: readonly (string | number)[],
): Promise<unknown> {
  const args: (string | number)[] = [keys.length];
  for (const k of keys) args.push(k);
  for (const v of argv) args.push(v);
  try {
    return await client.call('EVALSHA', s.sha, ...args);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
      return client.call('EVAL', s.source, ...args);
    }
    throw err;
  }
}
