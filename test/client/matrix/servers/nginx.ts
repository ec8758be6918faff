/**
 * Real nginx (the Debian package; `.ci/run` installs it) with `limit_req`, run as a child process
 * in the foreground (`daemon off; master_process off;`) with its own prefix, config, pid, logs and
 * temp dirs in a fresh temp directory, on a free loopback port. `limit_req` without `burst` is
 * nginx's strictest mode: a request closer than 1/rate to the previous accepted one is refused.
 * It answers a bare 429 (`limit_req_status 429`), or one with `Retry-After: 1` added the way nginx
 * users add it (`error_page 429` to a named location with `add_header ... always`).
 *
 * Calls are counted from nginx's own access log (one `$status` per line).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RowServer, ServerCounts } from './row-server.js';

/** Where nginx is: NGINX_BIN, else the Debian path, else whatever `nginx` PATH finds. */
export function nginxBinary(): string {
  if (process.env.NGINX_BIN) return process.env.NGINX_BIN;
  return existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
}

/** A free loopback port (the kernel picks; nginx binds it right after). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface NginxOptions {
  /** `limit_req_zone ... rate=<ratePerSec>r/s`. */
  ratePerSec: number;
  /** `limit_req ... burst=<n> nodelay`; absent: no burst (strict spacing). */
  burst?: number;
  /** Add `Retry-After: <s>` to the 429. */
  retryAfterS?: number;
}

function config(dir: string, port: number, o: NginxOptions): string {
  const burst = o.burst !== undefined ? ` burst=${o.burst} nodelay` : '';
  const throttled =
    o.retryAfterS !== undefined
      ? `error_page 429 = @throttled;\n    location @throttled { add_header Retry-After ${o.retryAfterS} always; return 429; }`
      : '';
  return `
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
daemon off;
master_process off;
worker_processes 1;
events { worker_connections 256; }
http {
  log_format status '$status';
  access_log ${dir}/access.log status;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout 30s;
  keepalive_requests 100000;
  limit_req_zone $server_name zone=api:1m rate=${o.ratePerSec}r/s;
  limit_req_status 429;
  server {
    listen 127.0.0.1:${port};
    server_name matrix;
    root ${dir}/www;
    default_type application/json;
    location / {
      limit_req zone=api${burst};
      try_files /ok.json =404;
    }
    ${throttled}
  }
}
`;
}

async function waitForPort(port: number, child: ChildProcess, dir: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const r = await fetch(`http://127.0.0.1:${port}/__probe_that_is_not_counted`, { method: 'HEAD' });
      await r.arrayBuffer();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const log = existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '';
  throw new Error(`nginx (${nginxBinary()}) did not start on 127.0.0.1:${port} (exit ${child.exitCode}): ${log}`);
}

export async function startNginx(o: NginxOptions): Promise<RowServer> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-matrix-nginx-'));
  const www = join(dir, 'www');
  mkdirSync(www);
  writeFileSync(join(www, 'ok.json'), '{"ok":true}');
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), config(dir, port, o));
  const child = spawn(nginxBinary(), ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: 'ignore' });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) => reject(new Error(`nginx could not be started (${nginxBinary()}): ${e.message}; install the Debian package nginx`)));
  });
  await spawned;
  await waitForPort(port, child, dir);
  // The start-up probe hit the limiter too: let its slot pass before the row's first call.
  await new Promise((r) => setTimeout(r, Math.ceil(1000 / o.ratePerSec) + 50));
  const probes = readStatuses(dir).length;
  const interval = 1000 / o.ratePerSec;
  return {
    url: `http://127.0.0.1:${port}`,
    counts: async () => count(readStatuses(dir).slice(probes)),
    idealMs: (n) => Math.max(0, n - 1 - (o.burst ?? 0)) * interval,
    ratePerSec: o.ratePerSec,
    close: async () => {
      process.removeListener('exit', killOnExit);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGQUIT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function readStatuses(dir: string): string[] {
  const f = join(dir, 'access.log');
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => l !== '') : [];
}

function count(statuses: string[]): ServerCounts {
  const c: ServerCounts = { ok: 0, r429: 0, other: 0 };
  for (const s of statuses) {
    if (s.startsWith('2')) c.ok++;
    else if (s === '429') c.r429++;
    else c.other++;
  }
  return c;
}
