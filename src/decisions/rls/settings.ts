/**
 * The `rls:` section of `sluice.yaml`: where the Envoy rate limit service listens and which
 * envoyproxy/ratelimit config files it loads. The gateway's config schema embeds it, so
 * `sluice check` validates it with the rest of the file.
 */
import { z } from 'zod';

/** Counting algorithms a descriptor can use (the `algorithm` key of a `rate_limit`). */
export const RLS_ALGORITHMS = ['gcra', 'token-bucket', 'fixed-window', 'sliding-window', 'sliding-log'] as const;
export type RlsAlgorithm = (typeof RLS_ALGORITHMS)[number];

export const rlsConfigSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1').describe('Address the gRPC server binds (0.0.0.0 to serve other hosts).'),
    port: z.number().int().min(0).max(65_535).default(8081).describe('gRPC port (envoyproxy/ratelimit uses 8081).'),
    configs: z
      .array(z.string().min(1))
      .min(1, 'list at least one envoyproxy/ratelimit config file')
      .describe('envoyproxy/ratelimit YAML files (domain + descriptors), relative to this file.'),
    algorithm: z
      .enum(RLS_ALGORITHMS)
      .default('gcra')
      .describe('Default algorithm of every descriptor; fixed-window counts exactly like envoyproxy/ratelimit.'),
    responseHeaders: z
      .enum(['both', 'ietf', 'x-ratelimit', 'none'])
      .default('both')
      .describe('Headers Envoy adds to the response: IETF RateLimit/RateLimit-Policy, X-RateLimit-*, both, or none.'),
    shadowMode: z.boolean().default(false).describe('Decide and report, but always answer OK (envoyproxy/ratelimit SHADOW_MODE).'),
    unknownDomain: z
      .enum(['error', 'allow'])
      .default('error')
      .describe('A request for a domain no config defines: INVALID_ARGUMENT (error) or OK with no limit (allow, what envoyproxy/ratelimit does).'),
    mergeDomains: z.boolean().default(false).describe('Merge files that define the same domain (envoyproxy/ratelimit MERGE_DOMAIN_CONFIG) instead of refusing them.'),
    maxDescriptors: z.number().int().min(1).max(1024).default(64).describe('More descriptors in one request: INVALID_ARGUMENT.'),
    maxEntries: z.number().int().min(1).max(256).default(32).describe('More entries in one descriptor: INVALID_ARGUMENT.'),
    maxValueLength: z.number().int().min(1).max(65_536).default(1024).describe('Longer descriptor keys or values: INVALID_ARGUMENT.'),
  })
  .strict();

/** The parsed, defaulted `rls:` section. */
export type RlsConfig = z.infer<typeof rlsConfigSchema>;
