/**
 * Sluice as Envoy's rate limit service: the `rls:` section of sluice.yaml started as a gRPC server
 * over the gateway's store (memory by default; Redis makes limits exact across processes).
 */
import type { Store } from '../../core/store.js';
import { loadRlsConfigs } from './config.js';
import { startRlsServer, type RlsLogger, type RlsServer } from './server.js';
import { RlsService } from './service.js';
import type { RlsConfig } from './settings.js';

export { loadRateLimitConfigs, loadRlsConfigs, readRateLimitConfigs, type RateLimitConfig, type ConfiguredLimit, type DescriptorNode } from './config.js';
export { findLimit, wildcardMatch, type Entry, type Match } from './match.js';
export { RlsService, RlsRequestError, type RlsRequest, type RlsResponse, type DescriptorStatus, type RlsServiceOptions } from './service.js';
export { startRlsServer, rateLimitServiceDefinition, type RlsServer, type RlsServerOptions } from './server.js';
export { rlsConfigSchema, type RlsConfig } from './settings.js';

/** A running rate limit service. */
export interface Rls extends RlsServer {
  readonly service: RlsService;
  /** Re-read the config files; on error the running config stays and the error is thrown. */
  reload(): void;
}

/** Options of {@link startRls}. */
export interface StartRlsOptions {
  store: Store;
  /** Directory the `configs` paths are relative to (sluice.yaml's). */
  baseDir: string;
  /** Override `rls.port` (tests: 0). */
  port?: number;
  logger?: RlsLogger;
}

/** Load the configs (every error thrown before a port is opened) and start the gRPC server. */
export async function startRls(config: RlsConfig, options: StartRlsOptions): Promise<Rls> {
  const service = new RlsService({
    config: loadRlsConfigs(config, options.baseDir),
    store: options.store,
    algorithm: config.algorithm,
    responseHeaders: config.responseHeaders,
    shadowMode: config.shadowMode,
    unknownDomain: config.unknownDomain,
    maxDescriptors: config.maxDescriptors,
    maxEntries: config.maxEntries,
    maxValueLength: config.maxValueLength,
  });
  const server = await startRlsServer({ service, host: config.host, port: options.port ?? config.port, ...(options.logger ? { logger: options.logger } : {}) });
  return {
    ...server,
    service,
    reload: () => service.setConfig(loadRlsConfigs(config, options.baseDir)),
  };
}
