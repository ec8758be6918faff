/**
 * Spec: the gateway as a proxy, on loopback with real upstreams: forwarding and rewriting, hop-by-hop
 * headers, 10 MB bodies streamed both ways (never buffered whole), upstream failures as 502/504
 * problem+json, malformed requests (bad paths 400, oversized headers 431, slow clients timed out
 * without stalling others), and graceful shutdown finishing in-flight requests.
 */
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/gateway/config.js';
import { startGateway, type Gateway } from '../../src/gateway/server.js';
import { quiet, upstream } from './support.js';


/** Send raw bytes, resolve with everything the server answers until it closes (or `untilMs`). */
function raw(url: string, data: string, untilMs = 5000): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname);
    let out = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve(out);
    }, untilMs);
    s.on('data', (d) => (out += d.toString()));
    s.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
    s.on('error', reject);
    s.write(data);
  });
}

let gw: Gateway;
let up: Awaited<ReturnType<typeof upstream>>;
let slow: Awaited<ReturnType<typeof upstream>>;
const seen: { url?: string; headers?: Record<string, unknown> } = {};
/** Resolved by the upstream when it has received the first request-body bytes. */
let firstBytes: { promise: Promise<void>; resolve: () => void };
/** Resolved by the client when it has received the first response-body bytes. */
let clientGot: { promise: Promise<void>; resolve: () => void };
const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

beforeAll(async () => {
  up = await upstream((req, res) => {
    const path = req.url ?? '';
    if (path.includes('/upload')) {
      // Hash the streamed body; signal the client as soon as bytes arrive.
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => {
        if (n === 0) firstBytes.resolve();
        n += c.length;
        h.update(c);
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bytes: n, sha256: h.digest('hex') }));
      });
      return;
    }
    if (path.includes('/download')) {
      // 10 MB in 64 KiB chunks; after the first MB, wait until the client has seen bytes.
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(10 * 1024 * 1024) });
      const chunk = Buffer.alloc(64 * 1024, 7);
      let sent = 0;
      const more = async () => {
        while (sent < 10 * 1024 * 1024) {
          if (sent === 1024 * 1024) await clientGot.promise;
          sent += chunk.length;
          if (!res.write(chunk)) {
            await new Promise((r) => res.once('drain', r));
          }
        }
        res.end();
      };
      void more();
      return;
    }
    if (path.includes('/slow')) {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('finally');
      }, 700);
      return;
    }
    seen.url = path;
    seen.headers = req.headers;
    res.writeHead(200, { 'content-type': 'application/json', connection: 'x-up-hop', 'x-up-hop': 'secret', 'keep-alive': 'timeout=5', 'x-up-normal': 'yes' });
    res.end(JSON.stringify({ ok: true }));
  });
  slow = await upstream((_req, res) => {
    setTimeout(() => {
      res.writeHead(200);
      res.end('late');
    }, 3000);
  });
  gw = await startGateway({
    logger: quiet,
    port: 0,
    config: validateConfig(
      {
        server: { headersTimeoutMs: 1000, requestTimeoutMs: 1500, maxHeaderSize: 8192, buildId: 'build-test' },
        upstreams: {
          api: { url: `${up.url}/base` },
          down: { url: 'http://127.0.0.1:1', connectTimeoutMs: 1000 },
          slow: { url: slow.url, headersTimeoutMs: 300 },
        },
        routes: [
          { path: '/v1/*', upstream: 'api', stripPrefix: '/v1' },
          { path: '/only-get/:id', methods: ['GET'], upstream: 'api' },
          { path: '/down/*', upstream: 'down' },
          { path: '/slow-upstream', upstream: 'slow' },
        ],
      },
      {},
    ),
  });
});

afterAll(async () => {
  await gw?.close();
  await up?.close();
  await slow?.close();
});

describe('forwarding', () => {
  it('rewrites the path (stripPrefix + upstream base path), keeps the query, sets forwarding headers', async () => {
    const r = await fetch(`${gw.url}/v1/orders/7?x=1&y=%20`, { headers: { 'x-request-id': 'req-123', 'x-sluice-consumer': 'forged', 'x-forwarded-for': '6.6.6.6' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-request-id')).toBe('req-123');
    expect(seen.url).toBe('/base/orders/7?x=1&y=%20');
    expect(seen.headers?.['x-request-id']).toBe('req-123');
    expect(seen.headers?.['x-sluice-consumer']).toBeUndefined(); // a client cannot forge the consumer
    expect(seen.headers?.['x-forwarded-for']).toBe('127.0.0.1'); // trustProxy false: the client's XFF is not believed
    expect(seen.headers?.host).toBe(new URL(up.url).host);
  });

  it('strips hop-by-hop headers in both directions, including those named by Connection', async () => {
    const res = await raw(gw.url, `GET /v1/h HTTP/1.1\r\nHost: x\r\nConnection: close, x-client-hop\r\nx-client-hop: secret\r\nTE: trailers\r\nProxy-Authorization: Basic abc\r\nx-normal: kept\r\n\r\n`);
    expect(res).toMatch(/^HTTP\/1.1 200/);
    expect(seen.headers?.['x-client-hop']).toBeUndefined();
    expect(seen.headers?.te).toBeUndefined();
    expect(seen.headers?.['proxy-authorization']).toBeUndefined();
    expect(seen.headers?.['x-normal']).toBe('kept');
    const head = res.split('\r\n\r\n')[0]!.toLowerCase();
    expect(head).toContain('x-up-normal: yes');
    expect(head).not.toContain('x-up-hop');
    expect(head).not.toContain('keep-alive: timeout=5');
  });

  it('404 problem+json for an unknown route or a method the route does not take', async () => {
    for (const [method, path] of [['GET', '/nope'], ['POST', '/only-get/1'], ['GET', '/only-get/']] as const) {
      const r = await fetch(`${gw.url}${path}`, { method });
      expect(r.status).toBe(404);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      const b = (await r.json()) as { type: string; status: number; trace: { buildId: string } };
      expect(b.type).toBe('https://httpproblems.com/http-status/404');
      expect(b.trace.buildId).toBe('build-test');
    }
    expect((await fetch(`${gw.url}/only-get/1`)).status).toBe(200);
  });
});

describe('10 MB bodies stream through without being buffered whole', () => {
  it('request body: the upstream receives bytes while the client is still sending', async () => {
    firstBytes = deferred();
    const total = 10 * 1024 * 1024;
    const chunk = new Uint8Array(256 * 1024).fill(3);
    const h = createHash('sha256');
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        // After 1 MB, wait until the upstream has seen bytes: a buffering proxy would deadlock here.
        if (sent === 1024 * 1024) await firstBytes.promise;
        if (sent >= total) return ctrl.close();
        h.update(chunk);
        sent += chunk.length;
        ctrl.enqueue(chunk);
      },
    });
    const r = await fetch(`${gw.url}/v1/upload`, { method: 'POST', body, duplex: 'half', headers: { 'content-type': 'application/octet-stream' } } as RequestInit);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ bytes: total, sha256: h.digest('hex') });
  });

  it('response body: the client receives bytes while the upstream is still sending', async () => {
    clientGot = deferred();
    const r = await fetch(`${gw.url}/v1/download`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe(String(10 * 1024 * 1024));
    let n = 0;
    const reader = r.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (n === 0) clientGot.resolve();
      n += value.length;
    }
    expect(n).toBe(10 * 1024 * 1024);
  });
});

describe('upstream failures', () => {
  it('upstream down: 502 problem+json in the 429 shape', async () => {
    const r = await fetch(`${gw.url}/down/x`, { headers: { 'x-request-id': 'down-1' } });
    expect(r.status).toBe(502);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    const b = (await r.json()) as Record<string, any>;
    expect(b).toMatchObject({ type: 'https://httpproblems.com/http-status/502', title: 'Bad Gateway', status: 502, instance: '/down/x' });
    expect(b.detail).toMatch(/upstream "down"/);
    expect(b.trace).toMatchObject({ requestId: 'down-1', buildId: 'build-test' });
    expect(new Date(b.trace.timestamp).toISOString()).toBe(b.trace.timestamp);
  });

  it('upstream slower than headersTimeoutMs: 504 problem+json', async () => {
    const r = await fetch(`${gw.url}/slow-upstream`);
    expect(r.status).toBe(504);
    const b = (await r.json()) as Record<string, any>;
    expect(b).toMatchObject({ title: 'Gateway Timeout', status: 504 });
    expect(b.detail).toMatch(/within 300 ms/);
  });
});

describe('malformed requests', () => {
  it('bad paths get 400: traversal (raw and encoded), bad percent-encoding, encoded slash, not origin-form', async () => {
    for (const target of ['/v1/../admin', '/v1/%2e%2e/admin', '/v1/%zz', '/v1/a%2fb', '/v1/a%00b', 'http://evil.example/v1/x', '*']) {
      const res = await raw(gw.url, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(res, target).toMatch(/^HTTP\/1.1 400/);
      expect(res, target).toContain('application/problem+json');
    }
  });

  it('oversized headers get 431', async () => {
    const res = await raw(gw.url, `GET /v1/x HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(res).toMatch(/^HTTP\/1.1 431/);
  });

  it('a slowloris client is timed out, and other clients are served meanwhile', async () => {
    // Headers never finished: answered 408 after headersTimeoutMs.
    const slowHeaders = raw(gw.url, 'GET /v1/x HTTP/1.1\r\nHost: x\r\nX-Slow: ', 8000);
    // Body never finished: requestTimeoutMs.
    const slowBody = raw(gw.url, 'POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc', 8000);
    for (let i = 0; i < 5; i++) expect((await fetch(`${gw.url}/v1/ok`)).status).toBe(200);
    const [a, b] = await Promise.all([slowHeaders, slowBody]);
    expect(a).toMatch(/^HTTP\/1.1 408 /);
    expect(b).toMatch(/^HTTP\/1.1 408 /);
    expect(b).toContain('application/problem+json');
  });
});

describe('graceful shutdown', () => {
  it('finishes in-flight requests, then refuses new connections', async () => {
    const g = await startGateway({ logger: quiet, port: 0, config: validateConfig({ upstreams: { api: { url: up.url } }, routes: [{ path: '/*', upstream: 'api' }] }, {}) });
    const inflight = fetch(`${g.url}/slow`).then(async (r) => [r.status, await r.text()] as const);
    await new Promise((r) => setTimeout(r, 200));
    const closing = g.close();
    expect(await inflight).toEqual([200, 'finally']);
    await closing;
    await expect(fetch(`${g.url}/slow`)).rejects.toThrow();
  });
});
