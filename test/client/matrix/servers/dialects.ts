/**
 * Small local servers that answer the way well-known APIs do, each with its own header dialect
 * (from the providers' public documentation), scaled to 1 s windows so a row takes seconds:
 *
 * - GitHub: `x-ratelimit-limit/-remaining/-used/-reset` (reset in epoch seconds), `x-ratelimit-resource`;
 *   the refusal carries no `Retry-After`.
 * - Discord: `x-ratelimit-limit/-remaining/-reset` (epoch seconds with a fraction, e.g. `1470173023.123`),
 *   `x-ratelimit-reset-after` (decimal seconds), `x-ratelimit-bucket`; the 429 adds `Retry-After`,
 *   `x-ratelimit-scope` and a JSON body with a decimal `retry_after`.
 * - X/Twitter: `x-rate-limit-limit/-remaining/-reset` (epoch seconds), windows opened by the first
 *   call; the 429 carries no `Retry-After`.
 * - Shopify REST: `X-Shopify-Shop-Api-Call-Limit: used/capacity` on every response, a leaky bucket;
 *   the 429 adds `Retry-After` as a decimal (`2.0` in production).
 * - RingCentral: `X-Rate-Limit-Group/-Limit/-Remaining/-Window` per group, `Retry-After` on 429, and
 *   its penalty box.
 * - A generic `X-RateLimit-Limit/-Remaining/-Reset` server whose reset is delta seconds.
 * - Retry-After only (an HTTP-date, or decimal seconds) and a bare 429 without any header.
 */
import { createServer } from 'node:http';
import { closeServer, countResponses, listenLoopback, type RowServer } from './row-server.js';
import type { Limiter, Verdict } from './limiters.js';

export type Dialect = 'github' | 'discord' | 'twitter' | 'shopify' | 'ringcentral' | 'x-ratelimit-delta' | 'retry-after-date' | 'retry-after-decimal' | 'bare';

export interface DialectGroup {
  name: string;
  /** Path prefix of the group's endpoints. */
  prefix: string;
  limiter: Limiter;
}

const epochS = (ms: number) => String(Math.ceil(ms / 1000));
const secondsLeft = (resetAtMs: number, now: number) => Math.max(0, resetAtMs - now) / 1000;

/** Headers (and body) of one response in a dialect. */
function respond(dialect: Dialect, group: string, v: Verdict, now: number): { headers: Record<string, string>; body: string } {
  const h: Record<string, string> = {};
  let body = v.ok ? '{"ok":true}' : '{"message":"rate limited"}';
  const left = secondsLeft(v.resetAtMs, now);
  switch (dialect) {
    case 'github':
      h['x-ratelimit-limit'] = String(v.limit);
      h['x-ratelimit-remaining'] = String(v.remaining);
      h['x-ratelimit-used'] = String(v.limit - v.remaining);
      h['x-ratelimit-reset'] = epochS(v.resetAtMs);
      h['x-ratelimit-resource'] = 'core';
      if (!v.ok) body = '{"message":"API rate limit exceeded for 127.0.0.1.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}';
      break;
    case 'discord':
      h['x-ratelimit-limit'] = String(v.limit);
      h['x-ratelimit-remaining'] = String(v.remaining);
      h['x-ratelimit-reset'] = (v.resetAtMs / 1000).toFixed(3);
      h['x-ratelimit-reset-after'] = left.toFixed(3);
      h['x-ratelimit-bucket'] = 'abcd1234abcd1234abcd1234abcd1234';
      if (!v.ok) {
        h['retry-after'] = String(Math.ceil(left));
        h['x-ratelimit-scope'] = 'user';
        body = JSON.stringify({ message: 'You are being rate limited.', retry_after: Number(left.toFixed(3)), global: false });
      }
      break;
    case 'twitter':
      h['x-rate-limit-limit'] = String(v.limit);
      h['x-rate-limit-remaining'] = String(v.remaining);
      h['x-rate-limit-reset'] = epochS(v.resetAtMs);
      if (!v.ok) body = '{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}';
      break;
    case 'shopify':
      h['x-shopify-shop-api-call-limit'] = `${v.used ?? v.limit - v.remaining}/${v.limit}`;
      if (!v.ok) {
        h['retry-after'] = left.toFixed(1);
        body = '{"errors":"Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}';
      }
      break;
    case 'ringcentral':
      h['x-rate-limit-group'] = group;
      h['x-rate-limit-limit'] = String(v.limit);
      h['x-rate-limit-remaining'] = String(v.remaining);
      h['x-rate-limit-window'] = String(Math.max(1, Math.ceil(v.windowMs / 1000)));
      if (!v.ok) {
        h['retry-after'] = String(Math.max(1, Math.ceil(left)));
        body = '{"errorCode":"CMN-301","message":"Request rate exceeded"}';
      }
      break;
    case 'x-ratelimit-delta':
      h['x-ratelimit-limit'] = String(v.limit);
      h['x-ratelimit-remaining'] = String(v.remaining);
      h['x-ratelimit-reset'] = String(Math.ceil(left));
      break;
    case 'retry-after-date':
      // IMF-fixdate has whole seconds: round up so the date is never before the budget is back.
      if (!v.ok) h['retry-after'] = new Date(Math.ceil(v.resetAtMs / 1000) * 1000).toUTCString();
      break;
    case 'retry-after-decimal':
      if (!v.ok) h['retry-after'] = left.toFixed(3);
      break;
    case 'bare':
      break;
  }
  return { headers: h, body };
}

/** Start a dialect server on loopback. Requests matching no group's prefix are answered 404. */
export async function startDialectServer(dialect: Dialect, groups: DialectGroup[]): Promise<RowServer> {
  const r429ByGroup: Record<string, number> = Object.fromEntries(groups.map((g) => [g.name, 0]));
  const server = createServer((req, res) => {
    req.resume();
    const g = groups.find((x) => (req.url ?? '/').startsWith(x.prefix));
    if (g === undefined) {
      res.writeHead(404).end();
      return;
    }
    const now = Date.now();
    const v = g.limiter.take(now);
    const { headers, body } = respond(dialect, g.name, v, now);
    if (!v.ok) r429ByGroup[g.name] = (r429ByGroup[g.name] ?? 0) + 1;
    res.writeHead(v.ok ? 200 : 429, { 'content-type': 'application/json', ...headers });
    res.end(body);
  });
  const counts = countResponses(server);
  const url = await listenLoopback(server);
  return {
    url,
    counts: async () => ({ ...(await counts()), r429ByGroup: { ...r429ByGroup } }),
    // Groups are independent: the calls are spread evenly across them by the row, so the slowest group sets the pace.
    idealMs: (n) => Math.max(...groups.map((g) => g.limiter.idealMs(Math.ceil(n / groups.length), Date.now()))),
    ratePerSec: groups.reduce((s, g) => s + g.limiter.ratePerSec, 0),
    close: () => closeServer(server),
  };
}
