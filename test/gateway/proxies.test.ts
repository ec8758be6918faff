/**
 * Sluice as the rate-limit service of proxies we did not write: Debian's nginx (`auth_request`) and
 * Caddy (`forward_auth`, written out), each started from the shipped example config
 * (examples/nginx, examples/caddy) with only the loopback ports changed, in front of the demo
 * upstream, asking a real `sluice serve` process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseList } from 'structured-headers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoUpstream } from '../../src/gateway/demo-upstream.js';
import { freePort } from '../support/free-port.js';
import { ROOT, spawnGateway, type GatewayProcess } from './support.js';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const CADDY = ['/usr/bin/caddy', '/usr/local/bin/caddy'].find((p) => existsSync(p));
const KEY = 'demo-key-free-0123456789';

async function waitFor(url: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch {
      if (Date.now() > end) throw new Error(`${url} did not come up`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** GET through the proxy from a chosen loopback source address (a distinct client IP). */
function get(url: string, headers: Record<string, string> = {}, localAddress = '127.0.0.1'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

interface Proxy {
  name: string;
  url: string;
  stop(): Promise<void>;
}

type Starter = (ports: { proxy: number; sluice: number; app: number }, dir: string) => Proxy;

function child(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const p = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  p.stderr?.resume();
  return p;
}
const stopChild = (p: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (p.exitCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
  });

/** The shipped example, with its fixed ports swapped for free ones. */
function ported(file: string, ports: { proxy: number; sluice: number; app: number }): string {
  return readFileSync(join(ROOT, file), 'utf8')
    .replaceAll('127.0.0.1:8000', `127.0.0.1:${ports.proxy}`)
    .replaceAll('127.0.0.1:8082', `127.0.0.1:${ports.sluice}`)
    .replaceAll('127.0.0.1:3000', `127.0.0.1:${ports.app}`);
}

const nginx: Starter = (ports, dir) => {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  writeFileSync(join(dir, 'nginx.conf'), ported('examples/nginx/nginx.conf', ports));
  const p = child(NGINX as string, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;']);
  return { name: 'nginx', url: `http://127.0.0.1:${ports.proxy}`, stop: () => stopChild(p) };
};

const caddy: Starter = (ports, dir) => {
  writeFileSync(join(dir, 'Caddyfile'), ported('examples/caddy/Caddyfile', ports));
  const p = child(CADDY as string, ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir });
  return { name: 'caddy', url: `http://127.0.0.1:${ports.proxy}`, stop: () => stopChild(p) };
};

const rows: [string, string | undefined, Starter, string, number][] = [
  // name, binary, starter, example sluice.yaml, status the proxy answers when Sluice is down
  ['nginx auth_request', NGINX, nginx, 'examples/nginx/sluice.yaml', 503],
  ['Caddy forward_auth', CADDY, caddy, 'examples/caddy/sluice.yaml', 502],
];

for (const [title, binary, starter, sluiceYaml, downStatus] of rows) {
  describe(`${title} -> Sluice forward-auth (real proxy, real sluice serve)`, () => {
    let dir: string;
    let gw: GatewayProcess;
    let proxy: Proxy;
    let app: Awaited<ReturnType<typeof startDemoUpstream>>;

    beforeAll(async () => {
      if (binary === undefined) throw new Error(`${title}: the proxy binary is not installed (.ci/run installs nginx and caddy)`);
      dir = mkdtempSync(join(tmpdir(), 'sluice-proxy-'));
      app = await startDemoUpstream(0);
      gw = await spawnGateway(join(ROOT, sluiceYaml));
      const sluicePort = Number(new URL(gw.forwardAuthUrl as string).port);
      proxy = starter({ proxy: await freePort(), sluice: sluicePort, app: Number(new URL(app.url).port) }, dir);
      await waitFor(proxy.url);
    });

    afterAll(async () => {
      await proxy?.stop();
      await gw?.stop();
      await app?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('admits exactly 5 per client IP on /hello; the 6th gets Sluice\'s 429 Problem Details and Retry-After through the proxy', async () => {
      const ok: Reply[] = [];
      for (let i = 0; i < 5; i++) ok.push(await get(`${proxy.url}/hello`, {}, '127.0.0.3'));
      expect(ok.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      expect(JSON.parse(ok[0]?.body as string)).toMatchObject({ message: 'hello from the demo upstream' });
      // Allowed answers carry the IETF headers Sluice decided, parseable as structured fields.
      const remaining = ok.map((r) => parseList(r.headers.ratelimit as string)[0]?.[1].get('r'));
      expect(remaining).toEqual([4, 3, 2, 1, 0]);
      expect(parseList(ok[0]?.headers['ratelimit-policy'] as string)[0]?.[1].get('q')).toBe(5);

      const refused = await get(`${proxy.url}/hello`, {}, '127.0.0.3');
      expect(refused.status).toBe(429);
      expect(refused.headers['content-type']).toBe('application/problem+json');
      const problem = JSON.parse(refused.body) as Record<string, unknown>;
      expect(problem).toMatchObject({ status: 429, title: 'Too Many Requests', instance: '/hello', detail: 'Rate limit exceeded' });
      expect(problem.trace).toMatchObject({ requestId: expect.any(String), buildId: expect.any(String) });
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(parseList(refused.headers.ratelimit as string)[0]?.[1].get('r')).toBe(0);

      // Another client behind the same proxy still has its 5 (the proxy is in trustProxy).
      expect((await get(`${proxy.url}/hello`, {}, '127.0.0.4')).status).toBe(200);
    });

    it('authenticates consumers through the proxy and hands the upstream the consumer Sluice found, never a client copy', async () => {
      const me = await get(`${proxy.url}/api/hello`, { 'x-api-key': KEY, 'x-sluice-consumer': 'admin' }, '127.0.0.5');
      expect(me.status).toBe(200);
      expect(JSON.parse(me.body)).toMatchObject({ consumer: 'demo-free' });
      const anon = await get(`${proxy.url}/api/hello`, { 'x-sluice-consumer': 'admin' }, '127.0.0.5');
      expect(anon.status).toBe(401);
      expect(JSON.parse(anon.body)).toMatchObject({ status: 401, instance: '/api/hello' });
      const wrong = await get(`${proxy.url}/api/hello`, { 'x-api-key': 'wrong-key-0123456789' }, '127.0.0.5');
      expect(wrong.status).toBe(401);
      expect(JSON.parse(wrong.body)).toMatchObject({ detail: 'unknown or revoked API key' });
    });

    it(`with Sluice down the proxy fails closed (${downStatus}), as documented`, async () => {
      await gw.stop();
      const r = await get(`${proxy.url}/hello`, {}, '127.0.0.6');
      expect(r.status).toBe(downStatus);
    });
  });
}
