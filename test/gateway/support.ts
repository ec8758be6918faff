/**
 * Helpers for the gateway specs: config files in a temp dir, gateway processes spawned through the
 * real CLI (`node --import tsx src/cli/main.ts serve`, test/support/gateway-process.ts), and small
 * loopback upstreams.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI, ROOT } from '../support/gateway-process.js';

export { CLI, ROOT, spawnGateway, type GatewayProcess } from '../support/gateway-process.js';
export const ADMIN_TOKEN = 'test-admin-token-0123456789';

/** A logger that drops everything (specs assert on behaviour, not log lines). */
export const quiet = { info: () => {}, warn: () => {}, error: () => {} };

/** Write a config object as YAML into a fresh temp dir; returns the path. */
export function writeConfig(config: unknown, name = 'sluice.yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-gw-'));
  const file = join(dir, name);
  writeFileSync(file, name.endsWith('.json') ? JSON.stringify(config) : stringify(config));
  return file;
}

/** A loopback upstream with a handler. */
export async function upstream(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** Upstream answering 200 JSON `{ path, consumer }` for anything. */
export function echoUpstream() {
  return upstream((req, res) => {
    const body = JSON.stringify({ path: req.url, consumer: req.headers['x-sluice-consumer'] ?? null, tier: req.headers['x-sluice-tier'] ?? null });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
}

/** Run the CLI to completion. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Admin API call. */
export async function admin(base: string, method: string, path: string, body?: unknown, token = ADMIN_TOKEN): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

/** Status codes of `n` sequential GETs. */
export async function statuses(url: string, n: number, headers: Record<string, string> = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(url, { headers });
    await r.arrayBuffer();
    out.push(r.status);
  }
  return out;
}
