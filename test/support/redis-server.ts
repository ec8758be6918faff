/**
 * Start and stop throw-away redis-server processes on loopback for integration tests (outage,
 * NOSCRIPT, cluster). The shared server on 6379 is never touched by these helpers.
 * Ports: the Redis store suites own 7000-7099.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** Whether a redis-server binary is installed (suites may skip, with a notice, only when it is not). */
export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0;
}

/** Print the skip notice and return true when redis-server is missing. */
export function skipWithoutRedis(suite: string): boolean {
  if (hasRedisServer()) return false;
  console.warn(`[${suite}] SKIPPED: no redis-server binary on this machine`);
  return true;
}

/** The shared Redis URL. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A running redis-server started by a test. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  readonly process: ChildProcess;
  /** SIGKILL the server (an outage, not a shutdown) and wait for the process to exit. */
  kill(): Promise<void>;
  /** Stop it and remove its directory. */
  stop(): Promise<void>;
}

async function waitForPing(port: number, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    c.on('error', () => {});
    try {
      await c.connect();
      if ((await c.ping()) === 'PONG') return;
    } catch {
      // not up yet
    } finally {
      c.disconnect();
    }
    if (Date.now() > until) throw new Error(`redis-server on port ${port} did not answer PING in ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Start redis-server on `port` (extra args e.g. `['--cluster-enabled', 'yes']`), wait for PING. */
export async function startRedis(port: number, extra: string[] = [], dir?: string): Promise<RedisServer> {
  const home = dir ?? mkdtempSync(join(tmpdir(), `sluice-redis-${port}-`));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', home, ...extra],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitForPing(port, 10_000);
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir: home,
    process: child,
    kill,
    async stop() {
      await kill();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Delete every key under `prefix` on the shared server (tests clean up after themselves). */
export function deletePrefix(url: string, prefix: string): Promise<void> {
  return deleteMatching(url, `${prefix}*`);
}

/** Delete every key matching the glob `pattern` (SCAN MATCH) on the shared server. */
export async function deleteMatching(url: string, pattern: string): Promise<void> {
  const c = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await c.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await c.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    c.disconnect();
  }
}
