/**
 * Sluice as nginx's rate-limit service (`npm run bench -- proxies`, HTTP part): nginx with
 * `auth_request` asking Sluice's forward-auth listener (memory store, a per-IP policy high enough
 * that nothing is refused) against the same nginx asking a trivial Node server that answers 204 to
 * everything: the protocol's own ceiling. Beside them: nginx `limit_req` alone and the Sluice
 * gateway as the proxy. All on loopback, same trivial upstream; variants alternate per round, the
 * best round of each is kept; decision-server CPU per request is the steadier figure.
 *
 * Target (issue 11): nginx + auth_request -> Sluice >= 0.9x nginx + auth_request -> trivial 204.
 * Env: BENCH_PROXIES_MS (per round, default 4000), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 50).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answerCpu, cpuOf, forkRole, freePort } from '../support/roles.js';
import { autocannon, type AutocannonResult } from '../support/autocannon.js';

const role = process.argv[2];
const quiet = { info: () => {}, warn: () => {}, error: () => {} };

async function child(): Promise<void> {
  const send = (port: number) => process.send?.({ port });
  answerCpu();
  if (role === 'upstream' || role === 'trivial-204') {
    const body = 'hello world';
    const s = createServer((_req, res) => {
      if (role === 'trivial-204') {
        res.writeHead(204);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
      res.end(body);
    });
    s.keepAliveTimeout = 60_000;
    s.listen(0, '127.0.0.1', () => send((s.address() as AddressInfo).port));
    return;
  }
  const { startGateway } = await import('../../src/gateway/server.js');
  const { validateConfig } = await import('../../src/gateway/config.js');
  const policies = { 'per-ip': { rateLimitBy: 'ip', requestsAllowed: 1_000_000_000, timeWindowMinutes: 1, headerMode: 'ietf' } };
  if (role === 'sluice-decisions') {
    const gw = await startGateway({
      port: 0,
      forwardAuthPort: 0,
      logger: quiet,
      config: validateConfig({ server: { trustProxy: ['127.0.0.1/32'], keepAliveTimeoutMs: 60_000 }, forwardAuth: {}, policies, routes: [{ path: '/*', policies: ['per-ip'], auth: 'none' }] }, {}),
    });
    send(Number(new URL(gw.forwardAuthUrl as string).port));
  } else if (role === 'sluice-gateway') {
    const gw = await startGateway({
      port: 0,
      logger: quiet,
      config: validateConfig({ upstreams: { api: { url: process.argv[3] as string } }, policies, routes: [{ path: '/*', upstream: 'api', policies: ['per-ip'], auth: 'none' }] }, {}),
    });
    send(Number(new URL(gw.url).port));
  }
}

/** One nginx with three servers: auth_request -> Sluice, auth_request -> trivial 204, limit_req alone. */
async function nginx(upstream: number, sluice: number, trivial: number): Promise<{ ports: [number, number, number]; stop(): void } | undefined> {
  if (spawnSync('nginx', ['-v']).error) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-nginx-'));
  mkdirSync(join(dir, 'tmp'));
  const ports: [number, number, number] = [await freePort(), await freePort(), await freePort()];
  const authServer = (port: number, decider: string) => `
  server {
    listen 127.0.0.1:${port};
    location / {
      auth_request /_auth;
      auth_request_set $rl $upstream_http_ratelimit;
      add_header RateLimit $rl always;
      proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://app;
    }
    location = /_auth {
      internal;
      proxy_pass http://${decider}/nginx;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_http_version 1.1; proxy_set_header Connection "";
    }
  }`;
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 4096; }
http { access_log off;
  client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp; uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
  limit_req_zone $binary_remote_addr zone=perip:10m rate=1000000r/s;
  upstream app { server 127.0.0.1:${upstream}; keepalive 128; }
  upstream sluice { server 127.0.0.1:${sluice}; keepalive 128; }
  upstream trivial { server 127.0.0.1:${trivial}; keepalive 128; }
  ${authServer(ports[0], 'sluice')}
  ${authServer(ports[1], 'trivial')}
  server { listen 127.0.0.1:${ports[2]}; location / { limit_req zone=perip burst=1000000 nodelay;
    proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://app; } }
}`,
  );
  const p = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 700));
  return { ports, stop: () => p.kill('SIGTERM') };
}

async function main(): Promise<void> {
  const ms = Number(process.env.BENCH_PROXIES_MS ?? 4000);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
  const up = await forkRole(import.meta.url, 'upstream');
  const decisions = await forkRole(import.meta.url, 'sluice-decisions');
  const trivial = await forkRole(import.meta.url, 'trivial-204');
  const gateway = await forkRole(import.meta.url, 'sluice-gateway', [`http://127.0.0.1:${up.port}`]);
  const ngx = await nginx(up.port, decisions.port, trivial.port);
  if (ngx === undefined) {
    console.log('nginx: not installed here; this suite needs it (apt-get install nginx)');
    for (const p of [up, decisions, trivial, gateway]) p.proc.kill();
    return;
  }
  // name, port, the process whose CPU per request is the cost of a decision
  const targets: [string, number, ChildProcess | undefined][] = [
    ['nginx auth_request -> sluice', ngx.ports[0], decisions.proc],
    ['nginx auth_request -> 204', ngx.ports[1], trivial.proc],
    ['nginx limit_req alone', ngx.ports[2], undefined],
    ['sluice gateway (proxy)', gateway.port, gateway.proc],
  ];
  const best = new Map<string, AutocannonResult>();
  const cpu = new Map<string, number>();
  for (const [, port] of targets) await autocannon({ url: `http://127.0.0.1:${port}/hello`, connections, duration: 1, pipelining: 1 });
  for (let r = 0; r < rounds; r++) {
    for (const [name, port, proc] of r % 2 === 0 ? targets : [...targets].reverse()) {
      const c0 = proc ? await cpuOf(proc) : 0;
      const res = await autocannon({ url: `http://127.0.0.1:${port}/hello`, connections, duration: ms / 1000, pipelining: 1 });
      if (proc) cpu.set(name, Math.min(cpu.get(name) ?? Infinity, ((await cpuOf(proc)) - c0) / (res.requests.total || 1)));
      if (res.non2xx > 0 || res.errors > 0) console.log(`  warning: ${name}: ${res.non2xx} non-2xx, ${res.errors} errors`);
      console.log(`  round ${r + 1} ${name.padEnd(30)} ${Math.round(res.requests.average).toString().padStart(7)} req/s  p99 ${res.latency.p99} ms`);
      const prev = best.get(name);
      if (prev === undefined || res.requests.average > prev.requests.average) best.set(name, res);
    }
  }
  const ceiling = best.get('nginx auth_request -> 204') as AutocannonResult;
  const alone = best.get('nginx limit_req alone') as AutocannonResult;
  console.log(`\nProxies, HTTP (best of ${rounds} x ${ms / 1000} s, ${connections} connections, loopback, 2 shared cores: noisy):`);
  for (const [name, , proc] of targets) {
    const b = best.get(name) as AutocannonResult;
    const c = cpu.get(name);
    console.log(
      `  ${name.padEnd(30)} ${Math.round(b.requests.average).toString().padStart(7)} req/s  p99 ${String(b.latency.p99).padStart(3)} ms  x${(b.requests.average / ceiling.requests.average).toFixed(2)} of auth->204  x${(b.requests.average / alone.requests.average).toFixed(2)} of limit_req` +
        (proc && c !== undefined ? `  | ${proc === gateway.proc ? 'proxy' : 'decision server'} CPU ${c.toFixed(1)} µs/req` : ''),
    );
  }
  const ratio = (best.get('nginx auth_request -> sluice') as AutocannonResult).requests.average / ceiling.requests.average;
  const cpuRatio = (cpu.get('nginx auth_request -> sluice') as number) / (cpu.get('nginx auth_request -> 204') as number);
  console.log(`  target: nginx auth_request -> sluice >= 0.90 x -> trivial 204: ${ratio.toFixed(2)} (${ratio >= 0.9 ? 'met' : 'NOT met'}); decision CPU sluice / trivial ${cpuRatio.toFixed(2)}`);
  for (const p of [up, decisions, trivial, gateway]) p.proc.kill();
  ngx.stop();
}

if (role === undefined) await main();
else await child();
