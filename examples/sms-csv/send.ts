/**
 * Send a CSV of SMS messages through a rate-limited API without being throttled.
 *
 *   node --import tsx examples/sms-csv/send.ts messages.csv --base-url https://platform.ringcentral.com \
 *     --path /restapi/v1.0/account/~/extension/~/sms --from +15550100 --limit 40 --window 60 \
 *     --token-url /restapi/oauth/token --client-id ID --client-secret SECRET --jwt "$RC_JWT"
 *
 *   node --import tsx examples/sms-csv/send.ts examples/sms-csv/messages.csv --demo
 *     (starts a local API limited by Sluice's own node:http middleware, 20 per 2 s with IETF
 *     RateLimit headers, and sends to it)
 *
 * CSV: a header line `to,text`, then one message per line (text may be quoted, "" escapes a quote).
 * Failed rows are printed at the end with their reason; the exit code is 1 when any row failed.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Command } from 'commander';
import { AuthenticationFailedError, createClient, progressBar, type OAuthOptions } from '../../src/client.js';
import { rateLimit } from '../../src/http.js';

/** A local SMS endpoint limited by Sluice's node:http middleware (the server half of the demo). */
async function startDemoApi(limit: number, windowMs: number): Promise<{ url: string; close(): Promise<void> }> {
  const limiter = rateLimit({ requestsAllowed: limit, timeWindowSeconds: windowMs / 1000, rateLimitBy: 'all', headerMode: 'ietf', logger: false });
  const server = createServer(async (req, res) => {
    if (!(await limiter(req, res))) return; // 429 problem+json already sent
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: String(Date.now()), messageStatus: 'Queued' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** Minimal CSV (RFC 4180 quoting). */
export function parseCsv(text: string): Record<string, string>[] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      if (row.some((f) => f.length > 0)) rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  row.push(field);
  if (row.some((f) => f.length > 0)) rows.push(row);
  const [header, ...body] = rows;
  if (header === undefined) return [];
  return body.map((r) => Object.fromEntries(header.map((h, i) => [h.trim(), r[i] ?? ''])));
}

const program = new Command()
  .argument('<csv>', 'CSV file with columns to,text')
  .option('--base-url <url>', 'API base URL')
  .option('--path <path>', 'SMS endpoint', '/restapi/v1.0/account/~/extension/~/sms')
  .option('--from <number>', 'sender number', '+15550100')
  .option('--limit <n>', 'requests per window for the SMS group', '40')
  .option('--window <s>', 'window in seconds', '60')
  .option('--token-url <url>', 'OAuth token endpoint')
  .option('--client-id <id>')
  .option('--client-secret <secret>')
  .option('--jwt <assertion>', 'JWT bearer grant assertion')
  .option('--demo', 'send to a local API limited by Sluice (20 per 2 s)')
  .parse();

const opts = program.opts<{ baseUrl?: string; path: string; from: string; limit: string; window: string; tokenUrl?: string; clientId?: string; clientSecret?: string; jwt?: string; demo?: boolean }>();
const rows = parseCsv(readFileSync(program.args[0] as string, 'utf8'));
let baseUrl = opts.baseUrl;
let limit = Number(opts.limit);
let windowMs = Number(opts.window) * 1000;
let stopDemo: (() => Promise<void>) | undefined;
if (opts.demo) {
  limit = 20;
  windowMs = 2000;
  const s = await startDemoApi(limit, windowMs);
  baseUrl = s.url;
  stopDemo = () => s.close();
}
if (baseUrl === undefined) {
  console.error('give --base-url (or --demo)');
  process.exit(2);
}
let auth: OAuthOptions | undefined;
if (opts.tokenUrl !== undefined && opts.jwt !== undefined) {
  auth = {
    tokenUrl: opts.tokenUrl,
    grant: { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: opts.jwt },
    ...(opts.clientId !== undefined ? { clientId: opts.clientId } : {}),
    ...(opts.clientSecret !== undefined ? { clientSecret: opts.clientSecret } : {}),
  };
}

const client = createClient({
  baseUrl,
  groups: { medium: { limit, windowMs } },
  routes: [{ method: 'POST', path: opts.path, group: 'medium' }],
  ...(auth ? { auth } : {}),
  logger: { warn: (o, msg) => console.error(`\n${msg ?? 'warning'} ${JSON.stringify(o)}`) },
});
const bar = progressBar(client, { total: rows.length, label: 'sms' });
const failures: string[] = [];
await Promise.all(
  rows.map(async (row, i) => {
    try {
      const res = await client.fetch(opts.path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ from: { phoneNumber: opts.from }, to: [{ phoneNumber: row.to }], text: row.text }),
      });
      await res.text();
      if (!res.ok) failures.push(`row ${i + 2} (${row.to}): HTTP ${res.status}`);
    } catch (err) {
      const e = err as Error;
      failures.push(`row ${i + 2} (${row.to}): ${e.name}: ${e.message}`);
      if (err instanceof AuthenticationFailedError) return; // the breaker fails the rest at once
    }
  }),
);
bar.stop();
await client.close();
await stopDemo?.();
for (const f of failures) console.error(f);
process.exit(failures.length > 0 ? 1 : 0);
