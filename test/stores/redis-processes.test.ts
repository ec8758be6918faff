/**
 * Four processes x 50 concurrent callers on one key limited to 1000 per minute admit exactly 1000
 * in total: the limit holds across processes (one Redis, one atomic script per decision).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { deletePrefix, REDIS_URL, skipWithoutRedis } from '../support/redis-server.js';

const skip = skipWithoutRedis('redis-processes');
const prefix = `sluicetest${randomUUID().slice(0, 8)}:`;
const hammer = join(dirname(fileURLToPath(import.meta.url)), '..', 'support', 'redis-hammer.ts');

afterAll(async () => {
  if (!skip) await deletePrefix(REDIS_URL, prefix);
});

function child(key: string): { ready: Promise<void>; go(): void; result: Promise<{ admitted: number; refused: number }> } {
  const p = spawn(process.execPath, ['--import', 'tsx', hammer, REDIS_URL, prefix, key, '50', '8'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (b: Buffer) => (out += b.toString()));
  p.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const result = new Promise<{ admitted: number; refused: number }>((resolve, reject) => {
    p.once('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out) as { admitted: number; refused: number });
      else reject(new Error(`hammer exited with ${code}: ${err}`));
    });
  });
  // tsx needs a moment to compile; the child waits on stdin, so a short pause lines them up.
  const ready = new Promise<void>((r) => setTimeout(r, 1500));
  return { ready, go: () => p.stdin.end('go\n'), result };
}

describe.skipIf(skip)('several processes share one limit', () => {
  it('4 processes x 50 concurrent callers, 1600 attempts, limit 1000/min: exactly 1000 admitted', async () => {
    const key = `hot:${randomUUID()}`;
    const children = Array.from({ length: 4 }, () => child(key));
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.go();
    const results = await Promise.all(children.map((c) => c.result));
    const admitted = results.reduce((n, r) => n + r.admitted, 0);
    const refused = results.reduce((n, r) => n + r.refused, 0);
    expect(admitted + refused).toBe(4 * 50 * 8);
    expect(admitted).toBe(1000);
  }, 60_000);
});
