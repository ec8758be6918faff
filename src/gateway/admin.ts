/**
 * The admin API, on its own port, every route behind `Authorization: Bearer <admin token>`
 * (compared in constant time on SHA-256 digests, so neither content nor length leaks):
 *
 * | Method and path | Does |
 * |---|---|
 * | `GET /consumers` | list consumers with key ids and overrides |
 * | `POST /consumers` `{ sub, tier?, metadata?, issueKey? }` | create (201; `key` once when `issueKey`) |
 * | `GET /consumers/:sub` | one consumer, its keys, overrides and effective limits per policy |
 * | `PATCH /consumers/:sub` `{ tier?, billingAnchor? }` | move it to another tier (`null`: none); set its billing anchor (ISO 8601, not in the future; `null`: none): its quotas count calendar periods from it. Its next request gets the new limits |
 * | `DELETE /consumers/:sub` | delete it, its keys and overrides (204) |
 * | `POST /consumers/:sub/keys` | issue a key (201 `{ id, key }`: the only time the key is shown) |
 * | `DELETE /consumers/:sub/keys/:id` | revoke a key (204; refused from the next request) |
 * | `PUT /consumers/:sub/overrides/:policy` `{ requestsAllowed, timeWindowMinutes? \| timeWindowSeconds? }` | set a limit for one policy, or `*` for all per-consumer policies (validated like a tier's limits in the config) |
 * | `DELETE /consumers/:sub/overrides/:policy` | remove it (204) |
 * | `GET /consumers/:sub/state` | current counters (remaining, reset) per per-consumer policy |
 * | `GET /consumers/:sub/usage` | what the consumer used and has left per per-consumer policy; quotas with their period and `resetsAt` |
 * | `POST /consumers/:sub/reset` `{ policy? }` | forget the consumer's counters (204) |
 * | `POST /reload` | reload the config file (200, or 409 when the new config is refused) |
 * | `GET /health` | `{ status: "ok" }` (no token needed) |
 *
 * plus the observability routes (`/metrics`, `/analytics/*`, `/dashboard`) when configured.
 * With a Redis store every change reaches every gateway instance (see consumers.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SluiceConfigError } from '../core/errors.js';
import type { Rule } from '../core/rule.js';
import { ruleWithLimits } from '../http/options.js';
import { compileQuotaRule, type QuotaPolicyOptions } from '../http/quota.js';
import type { Store } from '../core/store.js';
import { hasAdminToken, sendAdminProblem, sendAdminUnauthorized } from '../observability/admin-auth.js';
import { createObservabilityRoutes, type AdminHandler } from '../observability/admin-routes.js';
import { formatPath, overrideSchema } from './config.js';
import type { Observer } from '../observability/observer.js';
import { checkSub, RegistryError, type Consumer, type ConsumerRegistry } from './consumers.js';
import type { ConsumerPolicy } from './policies.js';
import type { GatewayState } from './state.js';
import { parseBillingAnchor, usageOf } from './usage.js';

/** Options of {@link createAdminHandler}. */
export interface AdminOptions {
  /** The current token (a function: reloads may change it). */
  token: () => string;
  registry: ConsumerRegistry;
  store: Store;
  state: () => GatewayState;
  observer?: Observer;
  reload: () => Promise<boolean>;
}

const MAX_BODY = 64 * 1024;
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, value?: unknown): void {
  if (status === 204 || value === undefined) {
    res.writeHead(status, { 'cache-control': 'no-store' });
    res.end();
    return;
  }
  const body = JSON.stringify(value, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `body larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  if (size === 0) return {};
  const ct = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(ct)) throw new HttpError(415, 'send application/json');
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, 'body must be a JSON object');
  return v as Record<string, unknown>;
}

/** A billing anchor from the admin API (epoch ms). */
function billingAnchorOf(v: unknown): number {
  const r = parseBillingAnchor(v);
  if (typeof r === 'string') throw new HttpError(400, r);
  return r;
}

/** A tier name from the admin API: one the config defines (own keys only: never `toString`). */
function knownTier(v: unknown, tiers: Record<string, unknown>): string {
  const tier = checkSub(v, 'tier');
  if (!Object.hasOwn(tiers, tier)) throw new HttpError(400, `unknown tier "${tier}" (defined: ${Object.keys(tiers).join(', ') || 'none'})`);
  return tier;
}

/** Build the admin request handler. */
export function createAdminHandler(o: AdminOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { registry, store } = o;
  let obs: { token: string; handler: AdminHandler } | undefined;
  const observability = (): AdminHandler | undefined => {
    if (o.observer === undefined) return undefined;
    const t = o.token();
    if (obs?.token !== t) obs = { token: t, handler: createObservabilityRoutes({ observer: o.observer, token: t }) };
    return obs.handler;
  };

  /** Buckets of a consumer under one policy: its user bucket, or one per API key. */
  const bucketsOf = (sub: string, p: ConsumerPolicy): { key: string; keyId?: string }[] => {
    const st = o.state();
    if (p.by === 'user') return [{ key: st.policies.bucketKey('user', sub) }];
    return registry.describe(sub).keys.map((k) => ({ key: st.policies.bucketKey('apikey', k.id), keyId: k.id }));
  };
  const ruleFor = (p: ConsumerPolicy, limit: number, windowMs: number, sub?: string): Rule => {
    if (p.config.period !== undefined) {
      const anchor = sub === undefined ? undefined : registry.consumer(sub)?.billingAnchor;
      if (limit === p.rule.limit && anchor === undefined) return p.rule;
      return compileQuotaRule(p.config as QuotaPolicyOptions, p.pool, (f) => f, { requests: limit, ...(anchor !== undefined ? { anchor } : {}) });
    }
    return ruleWithLimits(p.policy, limit, windowMs);
  };

  const route = async (req: IncomingMessage, res: ServerResponse, method: string, parts: string[]): Promise<void> => {
    const st = o.state();
    const [a, sub0, b, c, extra] = parts;
    if (a === 'reload' && parts.length === 1) {
      if (method !== 'POST') throw new HttpError(405, 'POST /reload');
      const ok = await o.reload();
      if (!ok) throw new HttpError(409, 'the new config was refused (see the gateway log); the running config is kept');
      return send(res, 200, { reloaded: true });
    }
    if (a !== 'consumers' || extra !== undefined) throw new HttpError(404, 'no such admin route');
    if (sub0 === undefined) {
      if (method === 'GET') return send(res, 200, { consumers: registry.list() });
      if (method !== 'POST') throw new HttpError(405, 'GET or POST /consumers');
      const body = await readJson(req);
      for (const k of Object.keys(body)) if (!['sub', 'tier', 'metadata', 'issueKey'].includes(k)) throw new HttpError(400, `unknown field "${k}"`);
      const sub = checkSub(body.sub);
      const tier = body.tier === undefined ? undefined : knownTier(body.tier, st.config.tiers);
      const metadata = body.metadata;
      if (metadata !== undefined && (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata))) throw new HttpError(400, 'metadata must be an object');
      const consumer = await registry.createConsumer({ sub, ...(tier !== undefined ? { tier } : {}), ...(metadata !== undefined ? { metadata: metadata as Record<string, unknown> } : {}) });
      const key = body.issueKey === true ? await registry.issueKey(sub) : undefined;
      return send(res, 201, { consumer, ...(key ? { key } : {}) });
    }
    const sub = checkSub(sub0);
    if (b === undefined) {
      if (method === 'GET') {
        const d = registry.describe(sub);
        const tier = d.consumer?.tier;
        const limits = [...st.policies.consumerPolicies.values()].map((p) => {
          const l = st.policies.limitsFor(sub, tier, p.name);
          return { policy: p.name, requestsAllowed: l.requestsAllowed, windowMs: l.windowMs, source: l.source };
        });
        if (d.consumer === undefined && d.overrides.length === 0) throw new HttpError(404, `no consumer "${sub}"`);
        return send(res, 200, { ...d, limits });
      }
      if (method === 'DELETE') {
        await registry.deleteConsumer(sub);
        return send(res, 204);
      }
      if (method === 'PATCH') {
        const body = await readJson(req);
        for (const k of Object.keys(body)) if (k !== 'tier' && k !== 'billingAnchor') throw new HttpError(400, `unknown field "${k}" (PATCH changes "tier" and "billingAnchor")`);
        if (!Object.hasOwn(body, 'tier') && !Object.hasOwn(body, 'billingAnchor')) throw new HttpError(400, 'tier (a tier name, or null for none) or billingAnchor (an ISO 8601 date in the past, or null) is required');
        let consumer: Consumer | undefined;
        if (Object.hasOwn(body, 'billingAnchor')) consumer = await registry.setBillingAnchor(sub, body.billingAnchor === null ? null : billingAnchorOf(body.billingAnchor));
        if (Object.hasOwn(body, 'tier')) consumer = await registry.setTier(sub, body.tier === null ? null : knownTier(body.tier, st.config.tiers));
        return send(res, 200, { consumer });
      }
      throw new HttpError(405, 'GET, PATCH or DELETE /consumers/:sub');
    }
    if (b === 'keys') {
      if (c === undefined) {
        if (method !== 'POST') throw new HttpError(405, 'POST /consumers/:sub/keys');
        return send(res, 201, await registry.issueKey(sub));
      }
      if (method !== 'DELETE') throw new HttpError(405, 'DELETE /consumers/:sub/keys/:id');
      await registry.revokeKey(sub, c);
      return send(res, 204);
    }
    if (b === 'overrides' && c !== undefined) {
      const policy = c;
      if (policy !== '*' && !st.policies.consumerPolicies.has(policy)) {
        throw new HttpError(400, `"${policy}" is not a per-consumer policy (rateLimitBy user or apiKey); known: ${[...st.policies.consumerPolicies.keys()].join(', ') || 'none'}, or "*"`);
      }
      if (method === 'DELETE') {
        await registry.removeOverride(sub, policy);
        return send(res, 204);
      }
      if (method !== 'PUT') throw new HttpError(405, 'PUT or DELETE /consumers/:sub/overrides/:policy');
      // The config's own rules (integer limit, window of at least 1 ms): an override the engine
      // would reject must never reach it, or the consumer's requests would go unlimited.
      const parsed = overrideSchema.safeParse(await readJson(req));
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new HttpError(400, `${formatPath(issue?.path ?? [])}: ${issue?.message ?? 'invalid'}`);
      }
      const o = parsed.data;
      const w = o.timeWindowSeconds !== undefined ? o.timeWindowSeconds / 60 : o.timeWindowMinutes;
      const rec = await registry.setOverride({ sub, policy, requestsAllowed: o.requestsAllowed, ...(w !== undefined ? { timeWindowMinutes: w } : {}) });
      return send(res, 200, { override: rec });
    }
    if (b === 'state' && c === undefined) {
      if (method !== 'GET') throw new HttpError(405, 'GET /consumers/:sub/state');
      const tier = registry.consumer(sub)?.tier;
      const out = [];
      for (const p of st.policies.consumerPolicies.values()) {
        const l = st.policies.limitsFor(sub, tier, p.name);
        const rule = ruleFor(p, l.requestsAllowed, l.windowMs, sub);
        for (const bk of bucketsOf(sub, p)) {
          const d = await store.decide(bk.key, [rule], 0, true);
          out.push({ policy: p.name, ...(bk.keyId ? { keyId: bk.keyId } : {}), limit: l.requestsAllowed, windowMs: l.windowMs, source: l.source, remaining: d.remaining, resetMs: d.resetMs });
        }
      }
      return send(res, 200, { sub, state: out });
    }
    if (b === 'usage' && c === undefined) {
      if (method !== 'GET') throw new HttpError(405, 'GET /consumers/:sub/usage');
      const consumer = registry.consumer(sub);
      const tier = consumer?.tier;
      const usage = [];
      for (const p of st.policies.consumerPolicies.values()) {
        const l = st.policies.limitsFor(sub, tier, p.name);
        const rule = ruleFor(p, l.requestsAllowed, l.windowMs, sub);
        for (const bk of bucketsOf(sub, p)) {
          const d = await store.decide(bk.key, [rule], 0, true);
          usage.push({ policy: p.name, ...(bk.keyId ? { keyId: bk.keyId } : {}), ...usageOf(rule, d, Date.now()), source: l.source });
        }
      }
      return send(res, 200, { sub, ...(consumer?.billingAnchor !== undefined ? { billingAnchor: new Date(consumer.billingAnchor).toISOString() } : {}), usage });
    }
    if (b === 'reset' && c === undefined) {
      if (method !== 'POST') throw new HttpError(405, 'POST /consumers/:sub/reset');
      const body = await readJson(req);
      const only = body.policy;
      if (only !== undefined && (typeof only !== 'string' || !st.policies.consumerPolicies.has(only))) throw new HttpError(400, `policy must name a per-consumer policy`);
      for (const p of st.policies.consumerPolicies.values()) {
        if (only !== undefined && p.name !== only) continue;
        for (const bk of bucketsOf(sub, p)) await store.reset(bk.key, [p.rule]);
      }
      return send(res, 204);
    }
    throw new HttpError(404, 'no such admin route');
  };

  return async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://admin.invalid');
      const method = req.method ?? 'GET';
      if (url.pathname === '/health') return send(res, 200, { status: 'ok' });
      const obsHandler = observability();
      if (obsHandler !== undefined && (await obsHandler(req, res))) return;
      if (!hasAdminToken(req, o.token())) return sendAdminUnauthorized(res);
      let parts: string[];
      try {
        parts = url.pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
      } catch {
        throw new HttpError(400, 'path is not valid percent-encoding');
      }
      await route(req, res, method, parts);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) sendAdminProblem(res, err.status, err.message);
      else if (err instanceof RegistryError) sendAdminProblem(res, err.status, err.message);
      else if (err instanceof SluiceConfigError) sendAdminProblem(res, 400, err.message);
      else sendAdminProblem(res, 503, `store unavailable: ${(err as Error).message}`);
    }
  };
}
