/**
 * A tiny upstream API for `sluice start` and the examples: `GET /hello` answers a JSON greeting
 * naming the consumer the gateway forwarded (`x-sluice-consumer`), `/echo` streams the request
 * body back, `/v1/completions` plays an LLM API (a canned completion, and the tokens it "used" in
 * `x-tokens-used`: 20 plus one per 4 characters of the prompt, the POST body or the `prompt` query
 * parameter), anything else answers 404 JSON.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Start the demo upstream on `host:port` (0 = any free port). */
export async function startDemoUpstream(port = 0, host = '127.0.0.1'): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/hello' || path === '/') {
      const body = JSON.stringify({ message: 'hello from the demo upstream', consumer: req.headers['x-sluice-consumer'] ?? null, time: new Date().toISOString() });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    } else if (path === '/v1/completions') {
      let prompt = new URL(req.url ?? '/', 'http://demo').searchParams.get('prompt') ?? '';
      let size = 0;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= 1_000_000) chunks.push(c);
      });
      req.on('end', () => {
        if (size > 0) prompt = Buffer.concat(chunks).toString('utf8');
        const tokens = 20 + Math.ceil(prompt.length / 4);
        const body = JSON.stringify({ object: 'text_completion', choices: [{ index: 0, text: 'Sluice says hello.' }], usage: { total_tokens: tokens } });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-tokens-used': String(tokens) });
        res.end(body);
      });
    } else if (path === '/echo') {
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
      req.pipe(res);
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'not found', path }));
    }
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const p = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${p}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
