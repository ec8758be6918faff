/**
 * The `observability:` block of the gateway config, as a zod schema the gateway's schema embeds,
 * and the function that turns a parsed block into an {@link Observer}. The analytics store
 * follows the gateway's store: give `redis` when the gateway shares state through Redis.
 *
 * ```yaml
 * observability:
 *   logs: { sampleRate: 0.01 }          # share of allowed requests logged; 429s always are
 *   warnings: { threshold: 0.8, webhookUrl: https://hooks.example.com/sluice }
 *   analytics: { retentionHours: 24 }
 * ```
 */
import type { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import { SluiceConfigError } from '../core/errors.js';
import { checkLogDestination } from './log-destination.js';
import { createObserver, type Observer } from './observer.js';

/** Schema of the `observability` block (every field optional, unknown keys refused). */
export const observabilityConfigSchema = z
  .object({
    logs: z
      .object({
        enabled: z.boolean().default(true),
        /** Share of allowed requests logged, 0..1. Refused and failed requests are always logged. */
        sampleRate: z.number().min(0).max(1).default(0.01),
        /** `stdout` or a file path (checked when the config is loaded: its directory must exist and be writable). */
        destination: z
          .string()
          .min(1)
          .default('stdout')
          .superRefine((d, ctx) => {
            if (d === 'stdout') return;
            try {
              checkLogDestination(d);
            } catch (err) {
              ctx.addIssue({ code: 'custom', message: err instanceof SluiceConfigError ? err.message.replace(/^Invalid option "[^"]*": /, '') : String(err) });
            }
          }),
        maxFieldLength: z.number().int().min(8).max(65_536).default(256),
      })
      .strict()
      .default({ enabled: true, sampleRate: 0.01, destination: 'stdout', maxFieldLength: 256 }),
    warnings: z
      .object({
        /** Share of a limit that triggers a near-limit warning. */
        threshold: z.number().gt(0).max(1).default(0.8),
        webhookUrl: z.url({ protocol: /^https?$/ }).optional(),
        webhookHeaders: z.record(z.string(), z.string()).optional(),
        retries: z.number().int().min(0).max(20).default(3),
        backoffMs: z.number().int().min(0).max(600_000).default(250),
        timeoutMs: z.number().int().min(1).max(600_000).default(2000),
        maxQueue: z.number().int().min(1).max(1_000_000).default(1000),
      })
      .strict()
      .default({ threshold: 0.8, retries: 3, backoffMs: 250, timeoutMs: 2000, maxQueue: 1000 }),
    analytics: z
      .object({
        /** How long minute buckets are kept. */
        retentionHours: z.number().min(0.1).max(24 * 90).default(24),
        flushIntervalMs: z.number().int().min(10).max(60_000).default(1000),
        /** Most distinct consumers/IPs tracked per flush before folding into `(other)`. */
        maxDistinct: z.number().int().min(1).max(1_000_000).default(10_000),
      })
      .strict()
      .default({ retentionHours: 24, flushIntervalMs: 1000, maxDistinct: 10_000 }),
    metrics: z
      .object({ processMetrics: z.boolean().default(false), maxLabelValues: z.number().int().min(1).default(200) })
      .strict()
      .default({ processMetrics: false, maxLabelValues: 200 }),
  })
  .strict();

/** The parsed block. */
export type ObservabilityConfig = z.infer<typeof observabilityConfigSchema>;

/** Build the observer a config block describes; `redis` makes analytics shared. */
export function observerFromConfig(config: ObservabilityConfig, options: { redis?: Redis | Cluster; prefix?: string } = {}): Observer {
  const { logs, warnings, analytics, metrics } = config;
  return createObserver({
    logs: logs.enabled
      ? { sampleRate: logs.sampleRate, maxFieldLength: logs.maxFieldLength, destination: logs.destination === 'stdout' ? 1 : logs.destination }
      : false,
    warnings,
    metrics,
    analytics: { retentionMs: analytics.retentionHours * 3_600_000, redis: options.redis, prefix: options.prefix },
    flushIntervalMs: analytics.flushIntervalMs,
    maxDistinct: analytics.maxDistinct,
  });
}
