/** Many processes, one quota: 3 processes on one Redis budget hold the server's limit together. */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startStrictServer, type StrictServer } from './support/strict-server.js';

let server: StrictServer | undefined;
afterAll(async () => server?.close());

function runWorker(env: Record<string, string>): Promise<{ ok: number; other: number[] }> {
  const script = fileURLToPath(new URL('./support/budget-worker.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`worker exited ${code}: ${err}`))));
  });
}

describe('shared budget through Redis', () => {
  it('3 processes x 25 calls against a 30-per-2 s penalty box: zero 429s, never over the limit', async () => {
    server = await startStrictServer({ groups: [{ name: 'api', limit: 30, windowMs: 2000, match: '/api' }], headers: 'none' });
    const env = { SERVER_URL: server.url, PREFIX: `test-client-${randomUUID().slice(0, 8)}:`, LIMIT: '30', WINDOW_MS: '2000', MARGIN_MS: '200', JOBS: '25' };
    const results = await Promise.all([runWorker(env), runWorker(env), runWorker(env)]);
    expect(results.map((r) => r.ok)).toEqual([25, 25, 25]);
    expect(server.total429()).toBe(0);
    expect(server.groups.api!.ok).toBe(75);
    expect(server.maxInWindow('api')).toBeLessThanOrEqual(30);
    // The budget was really shared: 75 calls at 30 per 2 s need more than two windows.
    const a = server.groups.api!.accepted;
    expect(a[a.length - 1]! - a[0]!).toBeGreaterThan(4000);
  }, 60_000);
});
