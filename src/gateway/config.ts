/**
 * The gateway's configuration file (`sluice.yaml` or JSON): its zod schema (the single source of
 * truth; `schema/sluice.schema.json` is generated from it for editor completion), `${ENV}`
 * interpolation, and {@link loadConfig}, which reports the first bad field as a dotted path and a
 * reason so `sluice serve` / `sluice check` can stop with a message an operator can act on.
 *
 * Model (Zuplo's): policies are defined once, by name, under `policies:`; routes reference them
 * by name in order. Two routes naming the same policy share its counter; a `pool` makes several
 * policies share one.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml, parseDocument, YAMLError } from 'yaml';
import { z } from 'zod';
import { SluiceConfigError } from '../core/errors.js';
import { compileTrustProxy } from '../http/client-ip.js';
import { costSchema, formatPath, headerNameSchema, nameSchema, overrideSchema, pastInstantSchema, policySchema, tierSchema, type PolicyConfig } from '../policy/schema.js';
import { hashKey } from './consumers.js';
import { observabilityConfigSchema } from '../observability/config.js';
import { rlsConfigSchema } from '../decisions/rls/settings.js';

const ms = (max: number) => z.number().int().min(1).max(max);
const name = nameSchema;
const headerName = headerNameSchema;
const url = z.url({ protocol: /^https?$/ });

const upstreamSchema = z
  .object({
    url: url.describe('Origin of the upstream, e.g. http://127.0.0.1:3000 (a path prefix is allowed).'),
    connections: z.number().int().min(1).max(10_000).default(128).describe('Most keep-alive connections to this upstream.'),
    connectTimeoutMs: ms(600_000).default(5_000),
    headersTimeoutMs: ms(3_600_000).default(30_000).describe('Upstream must send its response headers within this time (else 504).'),
    bodyTimeoutMs: ms(3_600_000).default(30_000).describe('Most idle time between two body chunks from the upstream.'),
    keepAliveTimeoutMs: ms(600_000).default(4_000),
    preserveHost: z.boolean().default(false).describe('Forward the client Host header instead of the upstream host.'),
  })
  .strict();

const routeSchema = z
  .object({
    name: name.optional().describe('Label for logs and metrics (default: the path).'),
    path: z
      .string()
      .regex(/^\/[^\s?#]*$/, 'must start with "/" and contain no spaces, "?" or "#"')
      .refine((p) => !p.includes('//') && !p.includes(';'), { message: 'must not contain "//" or ";" (request paths are normalised before matching; see docs/gateway.md)' })
      .describe('Pattern: literal segments, ":param" for one segment, a trailing "*" for the rest.'),
    methods: z.array(z.string().regex(/^[A-Z]{1,20}$/, 'must be an upper-case HTTP method')).min(1).optional(),
    upstream: name.optional().describe('Upstream to proxy to. Absent: a decision-only route, answered on the forwardAuth listener only.'),
    policies: z.array(name).default([]).describe('Policy names, evaluated in order (longest window first).'),
    auth: z.enum(['required', 'optional', 'none']).default('optional').describe('required: 401 without valid credentials; optional: anonymous allowed; none: credentials ignored.'),
    stripPrefix: z.string().regex(/^\/[^\s?#]*$/).optional().describe('Remove this prefix from the path before forwarding.'),
    cost: costSchema.optional().describe("Units each request of this route takes from its policies that give no cost of their own (a policy's cost wins)."),
  })
  .strict();

const consumerKeySchema = z.union([
  z.object({ hash: z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 hex digest (sluice hash-key <key>)') }).strict(),
  z.object({ value: z.string().min(16).max(512).describe('A plaintext key (demos only; prefer hash).') }).strict(),
]);

const consumerSchema = z
  .object({
    sub: name,
    tier: name.optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
    billingAnchor: pastInstantSchema.optional().describe("This consumer's billing date: its quota periods are counted from it (calendar mode)."),
    keys: z.array(consumerKeySchema).default([]),
  })
  .strict();

const redisNode = z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65_535) }).strict();
const storeSchema = z.union([
  z.literal('memory'),
  z
    .object({
      type: z.literal('memory'),
      maxKeys: z.number().int().min(1).optional(),
      maxBytes: z.number().int().min(1024).optional().describe('Memory budget of each policy\'s key table, in bytes (500 B per key; see docs/gateway.md).'),
    })
    .strict()
    .refine((m) => m.maxKeys === undefined || m.maxBytes === undefined, { message: 'give maxKeys or maxBytes, not both', path: ['maxBytes'] }),
  z
    .object({
      type: z.literal('redis'),
      url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(),
      nodes: z.array(redisNode).min(1).optional().describe('Redis Cluster seed nodes (instead of url).'),
      sentinel: z
        .object({
          sentinels: z.array(redisNode).min(1).describe('Sentinel addresses (give all of them).'),
          name: z.string().min(1).describe('Master name, as in "sentinel monitor <name> ...".'),
          password: z.string().optional(),
          sentinelPassword: z.string().optional(),
        })
        .strict()
        .optional()
        .describe('A primary managed by Redis Sentinel (instead of url); the gateway follows failovers.'),
      prefix: z.string().regex(/^[^{}]*$/, 'must not contain braces').max(100).default('sluice:'),
      timeoutMs: ms(60_000).default(250),
      expectedInstances: z
        .number()
        .int()
        .min(1)
        .max(10_000)
        .default(1)
        .describe('Gateway instances sharing this Redis: while it fails, a policy with onStoreError: local allows limit / expectedInstances per instance.'),
      localShare: z.number().gt(0).max(1).optional().describe('Share of each limit enforced locally while Redis fails (default 1 / expectedInstances).'),
      breaker: z
        .object({
          failureThreshold: z.number().int().min(1).max(1_000_000).default(5).describe('Consecutive store failures that open the circuit.'),
          probeIntervalMs: z.number().int().min(10).max(600_000).default(500).describe('While open, probe Redis this often.'),
        })
        .strict()
        .default({ failureThreshold: 5, probeIntervalMs: 500 })
        .describe('Circuit breaker: once open, decisions stop waiting for Redis until a background probe succeeds.'),
    })
    .strict()
    .refine((s) => [s.url, s.nodes, s.sentinel].filter((x) => x !== undefined).length === 1, { message: 'give exactly one of url, nodes or sentinel' }),
]);

const serverSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65_535).default(8080),
    maxHeaderSize: z.number().int().min(1024).max(1_048_576).default(16_384).describe('Larger request headers get 431.'),
    headersTimeoutMs: ms(600_000).default(10_000).describe('A client must send its headers within this time.'),
    requestTimeoutMs: ms(3_600_000).default(60_000).describe('A client must send its whole request (body included) within this time.'),
    keepAliveTimeoutMs: ms(600_000).default(5_000),
    shutdownTimeoutMs: ms(600_000).default(10_000).describe('In-flight requests get this long to finish on shutdown.'),
    buildId: z.string().min(1).max(200).optional().describe('trace.buildId of problem bodies.'),
    trustProxy: z.union([z.literal(false), z.number().int().min(0).max(32), z.array(z.string())]).default(false).describe('Which X-Forwarded-For hops to believe for the client address forwarded upstream.'),
    dropUnderscoreHeaders: z.boolean().default(false).describe('Drop every request header whose name contains "_" (nginx default). Underscore spellings of gateway-set headers are always dropped.'),
    caseSensitivePaths: z
      .boolean()
      .default(false)
      .describe('Match route paths case-sensitively. Default false: /V1/Orders takes the route of /v1/orders, as most upstream frameworks serve both.'),
  })
  .strict();

const adminSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65_535).default(9090),
    token: z.string().min(16, 'must be at least 16 characters').describe('Bearer token of the admin API (use ${ENV_VAR}).'),
  })
  .strict();

const authSchema = z
  .object({
    apiKey: z
      .object({ header: headerName.default('x-api-key').describe('Header read when there is no Authorization: Bearer key.') })
      .strict()
      .optional(),
    jwt: z
      .object({
        secret: z.string().min(32, 'must be at least 32 characters (HS256)').optional(),
        jwksUrl: url.optional(),
        issuer: z.string().optional(),
        audience: z.string().optional(),
        algorithms: z
          .array(z.enum(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']))
          .min(1)
          .optional()
          .describe('Accepted JWS algorithms: HS* with secret, the others with jwksUrl ("none" is never accepted).'),
        subClaim: z.string().min(1).default('sub'),
        tierClaim: z.string().min(1).default('tier'),
        clockToleranceSeconds: z.number().int().min(0).max(3600).default(5),
        requireExp: z.boolean().default(true).describe('Refuse tokens without an "exp" claim (they would never expire).'),
      })
      .strict()
      .refine((j) => (j.secret === undefined) !== (j.jwksUrl === undefined), { message: 'give exactly one of secret or jwksUrl' })
      // A secret verifies only HS* signatures and a JWKS only the others: any other pairing would refuse every token at runtime.
      .refine((j) => j.algorithms === undefined || j.algorithms.every((a) => a.startsWith('HS') === (j.secret !== undefined)), {
        message: 'HS256/384/512 go with secret, the other algorithms with jwksUrl',
        path: ['algorithms'],
      })
      .optional(),
  })
  .strict();

/**
 * The forward-auth decision listener (nginx `auth_request`, Caddy `forward_auth`, Traefik
 * `ForwardAuth`): its own port, so decisions never mix with proxied paths and can be bound to an
 * internal interface.
 */
const forwardAuthSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65_535).default(8082),
  })
  .strict();

/** The whole file. */
export const gatewayConfigSchema = z
  .object({
    $schema: z.string().optional(),
    server: serverSchema.default(serverSchema.parse({})),
    admin: adminSchema.optional().describe('Admin API on its own port; absent = no admin API.'),
    store: storeSchema.default('memory'),
    upstreams: z.record(name, upstreamSchema).default({}),
    forwardAuth: forwardAuthSchema.optional().describe('Answer proxies (nginx auth_request, Caddy forward_auth, Traefik ForwardAuth) with rate-limit decisions on this listener.'),
    policies: z.record(name, policySchema).default({}),
    tiers: z.record(name, tierSchema).default({}),
    auth: authSchema.default({}),
    consumers: z.array(consumerSchema).default([]),
    routes: z.array(routeSchema).default([]),
    observability: observabilityConfigSchema.optional(),
    rls: rlsConfigSchema.optional().describe('Envoy rate limit service (gRPC) over envoyproxy/ratelimit config files.'),
  })
  .strict()
  // Routes may be left out only when the file runs the Envoy rate limit service alone.
  .superRefine((c, ctx) => {
    if (c.rls === undefined && c.routes.length === 0) ctx.addIssue({ code: 'custom', path: ['routes'], message: 'at least one route is required' });
  });

/** A parsed, defaulted config. */
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;
export type { PolicyConfig, TierConfig } from '../policy/schema.js';
export { formatPath, overrideSchema, policySchema, tierSchema };
export type RouteConfig = z.infer<typeof routeSchema>;
export type UpstreamConfig = z.infer<typeof upstreamSchema>;
export type StoreConfig = z.infer<typeof storeSchema>;

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replace `${NAME}` / `${NAME:-default}` in every string; an unset variable without default is an error naming the field. */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, path: PropertyKey[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, v: string, fallback: string | undefined) => {
      const got = env[v];
      if (got !== undefined && got !== '') return got;
      if (fallback !== undefined) return fallback;
      throw new SluiceConfigError(formatPath(path), `environment variable ${v} is not set`);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      // Assigning it would replace the object's prototype rather than add an entry.
      if (k === '__proto__') throw new SluiceConfigError(formatPath([...path, k]), 'the name "__proto__" is reserved');
      out[k] = interpolateEnv(v, env, [...path, k]);
    }
    return out;
  }
  return value;
}

/** Where a syntax error is: line and column (1-based), never the text around it (it may hold a secret). */
function syntaxPosition(err: unknown, text: string, json: boolean): string {
  let pos: { line: number; col: number } | undefined;
  if (err instanceof YAMLError) pos = err.linePos?.[0];
  else if (json) {
    // V8's JSON.parse message quotes the text around the error and gives no position; the YAML
    // parser in its JSON schema (JSON is YAML 1.2 flow syntax) locates the same error.
    pos = parseDocument(text, { schema: 'json', uniqueKeys: true }).errors[0]?.linePos?.[0];
  }
  return pos === undefined ? 'syntax error' : `syntax error at line ${pos.line}, column ${pos.col}`;
}

/** Parse file text as YAML (or JSON for `.json`). Syntax errors become a SluiceConfigError with the line and column. */
export function parseConfigText(text: string, file = 'config.yaml'): unknown {
  const json = extname(file).toLowerCase() === '.json';
  try {
    if (json) return JSON.parse(text) as unknown;
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true }) as unknown;
  } catch (err) {
    const code = err instanceof YAMLError ? ` (${err.code})` : '';
    throw new SluiceConfigError('(file)', `${file} is not valid ${json ? 'JSON' : 'YAML'}: ${syntaxPosition(err, text, json)}${code}`);
  }
}

const has = Object.hasOwn;
const names = (o: object) => Object.keys(o).join(', ') || 'none';

/** Validate a raw object against the schema and the cross-references (routes → upstreams, policies, tiers). */
export function validateConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new SluiceConfigError('(root)', 'the config must be a mapping (object)');
  const withEnv = interpolateEnv(raw, env);
  const parsed = gatewayConfigSchema.safeParse(withEnv);
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    throw new SluiceConfigError(formatPath(issue.path), issue.message);
  }
  const c = parsed.data;
  // Object.hasOwn, never `in`: a route naming `constructor` or a tier named `toString` must not
  // find Object.prototype's members.
  c.routes.forEach((r, i) => {
    if (r.upstream === undefined) {
      if (c.forwardAuth === undefined) throw new SluiceConfigError(`routes[${i}].upstream`, 'required unless forwardAuth is configured (a route without upstream is decision-only)');
      if (r.stripPrefix !== undefined) throw new SluiceConfigError(`routes[${i}].stripPrefix`, 'a decision-only route (no upstream) forwards nothing to strip');
    } else if (!has(c.upstreams, r.upstream)) {
      throw new SluiceConfigError(`routes[${i}].upstream`, `unknown upstream "${r.upstream}" (defined: ${names(c.upstreams)})`);
    }
    r.policies.forEach((p, j) => {
      if (!has(c.policies, p)) throw new SluiceConfigError(`routes[${i}].policies[${j}]`, `unknown policy "${p}" (defined: ${names(c.policies)})`);
    });
    if (new Set(r.policies).size !== r.policies.length) throw new SluiceConfigError(`routes[${i}].policies`, 'lists a policy twice');
    if (r.stripPrefix !== undefined && !r.path.startsWith(r.stripPrefix)) throw new SluiceConfigError(`routes[${i}].stripPrefix`, `"${r.stripPrefix}" is not a prefix of path "${r.path}"`);
  });
  for (const [name, p] of Object.entries(c.policies)) {
    // Zuplo's `quotaBy` is `rateLimitBy` under another name: one field downstream.
    if (p.quotaBy !== undefined) {
      if ((raw as { policies?: Record<string, { rateLimitBy?: unknown }> }).policies?.[name]?.rateLimitBy !== undefined) {
        throw new SluiceConfigError(`policies.${name}.quotaBy`, 'give either rateLimitBy or quotaBy, not both');
      }
      p.rateLimitBy = p.quotaBy;
      delete p.quotaBy;
    }
  }
  for (const [tier, t] of Object.entries(c.tiers)) {
    for (const [p, l] of Object.entries(t.policies ?? {})) {
      if (!has(c.policies, p)) throw new SluiceConfigError(`tiers.${tier}.policies.${p}`, `unknown policy "${p}"`);
      const quota = (c.policies[p] as PolicyConfig).period !== undefined;
      if (quota && l.allowances === undefined) throw new SluiceConfigError(`tiers.${tier}.policies.${p}.allowances`, `"${p}" is a quota: give allowances: { requests: N }`);
      if (!quota && l.allowances !== undefined) throw new SluiceConfigError(`tiers.${tier}.policies.${p}.allowances`, `"${p}" is not a quota (no period): give requestsAllowed`);
    }
  }
  const subs = new Set<string>();
  const keyOwners = new Map<string, string>();
  c.consumers.forEach((k, i) => {
    if (subs.has(k.sub)) throw new SluiceConfigError(`consumers[${i}].sub`, `duplicate consumer "${k.sub}"`);
    subs.add(k.sub);
    if (k.tier !== undefined && !has(c.tiers, k.tier)) throw new SluiceConfigError(`consumers[${i}].tier`, `unknown tier "${k.tier}" (defined: ${names(c.tiers)})`);
    k.keys.forEach((key, j) => {
      // One key, one consumer: otherwise the key would silently authenticate as the last one listed.
      const hash = Object.hasOwn(key, 'hash') ? (key as { hash: string }).hash : hashKey((key as { value: string }).value);
      const owner = keyOwners.get(hash);
      if (owner !== undefined) throw new SluiceConfigError(`consumers[${i}].keys[${j}]`, `this key is already a key of consumer "${owner}"`);
      keyOwners.set(hash, k.sub);
    });
  });
  compileTrustProxy(c.server.trustProxy, 'server.trustProxy');
  return c;
}

/** Read, parse and validate a config file. Throws SluiceConfigError (field path + reason). */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SluiceConfigError('(file)', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return validateConfig(parseConfigText(text, file), env);
}

/** The JSON Schema of the file (input side: defaults are optional), for editors. */
export function configJsonSchema(): Record<string, unknown> {
  const s = z.toJSONSchema(gatewayConfigSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...s, $id: 'https://github.com/sluice/sluice/schema/sluice.schema.json', title: 'Sluice gateway configuration' };
}
