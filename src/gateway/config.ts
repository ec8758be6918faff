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
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SluiceConfigError } from '../core/errors.js';
import { observabilityConfigSchema } from '../observability/config.js';

const ms = (max: number) => z.number().int().min(1).max(max);
const name = z.string().min(1).max(200);
const headerName = z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$/, 'must be a valid HTTP header name');
const url = z.url({ protocol: /^https?$/ });

/** A window, in minutes or seconds (fractions allowed). */
const windowFields = {
  timeWindowMinutes: z.number().positive().optional(),
  timeWindowSeconds: z.number().positive().optional(),
};

/** One rate-limit policy: the HTTP layer's options (Zuplo names) minus the code-only ones. */
export const policySchema = z
  .object({
    requestsAllowed: z.number().int().min(1).optional().describe('Requests allowed per window (required unless failedAuth is set).'),
    ...windowFields,
    rateLimitBy: z
      .enum(['ip', 'user', 'apiKey', 'header', 'all'])
      .default('ip')
      .describe('ip | user (authenticated consumer sub) | apiKey (the presented key) | header (headerName) | all (one bucket).'),
    headerName: headerName.optional(),
    burst: z.number().int().min(1).optional(),
    algorithm: z.enum(['gcra', 'token-bucket', 'fixed-window', 'sliding-window', 'sliding-log']).optional(),
    headerMode: z.enum(['retry-after', 'ietf', 'legacy', 'none']).optional(),
    mode: z.enum(['strict', 'async']).optional(),
    onStoreError: z
      .enum(['allow', 'deny', 'local'])
      .optional()
      .describe('When the store fails: allow (default), deny (503), or local (this instance enforces limit / store.expectedInstances from memory until Redis answers).'),
    throwOnFailure: z.boolean().optional(),
    shadow: z.boolean().optional(),
    allowList: z.array(z.string()).optional().describe('IPs/CIDRs that bypass this policy.'),
    denyList: z.array(z.string()).optional().describe('IPs/CIDRs refused with 403.'),
    pool: name.optional().describe('Counter shared by every policy naming the same pool (default: the policy name).'),
    trustProxy: z.union([z.literal(false), z.number().int().min(0).max(32), z.array(z.string())]).optional(),
    forwardedHeader: z.enum(['x-forwarded-for', 'forwarded']).optional(),
    ipv6Subnet: z.number().int().min(1).max(128).optional(),
    onUnidentified: z.enum(['ip', 'deny', 'allow']).optional(),
    failedAuth: z
      .object({
        countStatuses: z.array(z.number().int().min(100).max(599)).min(1).optional(),
        threshold: z.number().int().min(1),
        windowMinutes: z.number().positive().optional(),
        windowSeconds: z.number().positive().optional(),
        penaltyMinutes: z.number().positive().optional(),
        penaltySeconds: z.number().positive().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** Limits of a tier: a default for every per-consumer policy, and per-policy values. */
const limitSchema = z
  .object({ requestsAllowed: z.number().int().min(1), ...windowFields })
  .strict();
export const tierSchema = z
  .object({
    requestsAllowed: z.number().int().min(1).optional(),
    ...windowFields,
    policies: z.record(name, limitSchema).optional().describe('Per-policy limits for this tier (policy name -> limits).'),
  })
  .strict();

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
      .describe('Pattern: literal segments, ":param" for one segment, a trailing "*" for the rest.'),
    methods: z.array(z.string().regex(/^[A-Z]{1,20}$/, 'must be an upper-case HTTP method')).min(1).optional(),
    upstream: name,
    policies: z.array(name).default([]).describe('Policy names, evaluated in order (longest window first).'),
    auth: z.enum(['required', 'optional', 'none']).default('optional').describe('required: 401 without valid credentials; optional: anonymous allowed; none: credentials ignored.'),
    stripPrefix: z.string().regex(/^\/[^\s?#]*$/).optional().describe('Remove this prefix from the path before forwarding.'),
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
    keys: z.array(consumerKeySchema).default([]),
  })
  .strict();

const redisNode = z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65_535) }).strict();
const storeSchema = z.union([
  z.literal('memory'),
  z.object({ type: z.literal('memory'), maxKeys: z.number().int().min(1).optional() }).strict(),
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
          probeIntervalMs: z.number().int().min(10).max(600_000).default(1000).describe('While open, probe Redis this often.'),
        })
        .strict()
        .default({ failureThreshold: 5, probeIntervalMs: 1000 })
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
        algorithms: z.array(z.string()).optional(),
        subClaim: z.string().min(1).default('sub'),
        tierClaim: z.string().min(1).default('tier'),
        clockToleranceSeconds: z.number().int().min(0).max(3600).default(5),
      })
      .strict()
      .refine((j) => (j.secret === undefined) !== (j.jwksUrl === undefined), { message: 'give exactly one of secret or jwksUrl' })
      .optional(),
  })
  .strict();

/** The whole file. */
export const gatewayConfigSchema = z
  .object({
    $schema: z.string().optional(),
    server: serverSchema.default(serverSchema.parse({})),
    admin: adminSchema.optional().describe('Admin API on its own port; absent = no admin API.'),
    store: storeSchema.default('memory'),
    upstreams: z.record(name, upstreamSchema).refine((u) => Object.keys(u).length > 0, { message: 'at least one upstream is required' }),
    policies: z.record(name, policySchema).default({}),
    tiers: z.record(name, tierSchema).default({}),
    auth: authSchema.default({}),
    consumers: z.array(consumerSchema).default([]),
    routes: z.array(routeSchema).min(1, 'at least one route is required'),
    observability: observabilityConfigSchema.optional(),
  })
  .strict();

/** A parsed, defaulted config. */
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;
export type PolicyConfig = z.infer<typeof policySchema>;
export type TierConfig = z.infer<typeof tierSchema>;
export type RouteConfig = z.infer<typeof routeSchema>;
export type UpstreamConfig = z.infer<typeof upstreamSchema>;
export type StoreConfig = z.infer<typeof storeSchema>;

/** Dotted path as operators read it: `routes[2].upstream`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out || '(root)';
}

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
    for (const [k, v] of Object.entries(value)) out[k] = interpolateEnv(v, env, [...path, k]);
    return out;
  }
  return value;
}

/** Parse file text as YAML (or JSON for `.json`). Syntax errors become a SluiceConfigError with the line. */
export function parseConfigText(text: string, file = 'config.yaml'): unknown {
  try {
    if (extname(file).toLowerCase() === '.json') return JSON.parse(text) as unknown;
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true }) as unknown;
  } catch (err) {
    throw new SluiceConfigError('(file)', `${file} is not valid ${extname(file).toLowerCase() === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`);
  }
}

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
  c.routes.forEach((r, i) => {
    if (!(r.upstream in c.upstreams)) throw new SluiceConfigError(`routes[${i}].upstream`, `unknown upstream "${r.upstream}" (defined: ${Object.keys(c.upstreams).join(', ')})`);
    r.policies.forEach((p, j) => {
      if (!(p in c.policies)) throw new SluiceConfigError(`routes[${i}].policies[${j}]`, `unknown policy "${p}" (defined: ${Object.keys(c.policies).join(', ') || 'none'})`);
    });
    if (new Set(r.policies).size !== r.policies.length) throw new SluiceConfigError(`routes[${i}].policies`, 'lists a policy twice');
    if (r.stripPrefix !== undefined && !r.path.startsWith(r.stripPrefix)) throw new SluiceConfigError(`routes[${i}].stripPrefix`, `"${r.stripPrefix}" is not a prefix of path "${r.path}"`);
  });
  for (const [tier, t] of Object.entries(c.tiers)) {
    for (const p of Object.keys(t.policies ?? {})) {
      if (!(p in c.policies)) throw new SluiceConfigError(`tiers.${tier}.policies.${p}`, `unknown policy "${p}"`);
    }
  }
  const subs = new Set<string>();
  c.consumers.forEach((k, i) => {
    if (subs.has(k.sub)) throw new SluiceConfigError(`consumers[${i}].sub`, `duplicate consumer "${k.sub}"`);
    subs.add(k.sub);
    if (k.tier !== undefined && !(k.tier in c.tiers)) throw new SluiceConfigError(`consumers[${i}].tier`, `unknown tier "${k.tier}" (defined: ${Object.keys(c.tiers).join(', ') || 'none'})`);
  });
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
