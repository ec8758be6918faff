/**
 * `sluice serve` with an `rls:` section: the Envoy rate limit service beside the gateway (sharing
 * its store), or alone when the file has no routes.
 */
import { dirname, resolve } from 'node:path';
import { loadConfig, type GatewayConfig } from '../gateway/config.js';
import { stderrLogger, storeOf } from '../gateway/server.js';
import type { Store } from '../core/store.js';
import { summarizeHealthEvent } from '../stores/fallback-store.js';
// Only the config loader here: the gRPC server (and grpc-js) is imported when the service starts.
import { loadRlsConfigs } from '../decisions/rls/config.js';
import type { Rls } from '../decisions/rls/index.js';
import type { RlsConfig } from '../decisions/rls/settings.js';

/** What `serve` does with the rate limit service of a config file. */
export interface RlsPlan {
  readonly config: GatewayConfig;
  readonly rls: RlsConfig;
  /** True when the file has no routes: only the gRPC service runs. */
  readonly alone: boolean;
  /** Start the service over `store`; SIGHUP re-reads its config files, SIGTERM/SIGINT stop it. */
  start(store: Store, port?: number): Promise<Rls>;
}

/**
 * Read the file and, when it has an `rls:` section, its envoyproxy/ratelimit files: every config
 * error is thrown here, before any port is opened. Undefined when there is no `rls:` section.
 */
export function planRls(file: string): RlsPlan | undefined {
  const config = loadConfig(file);
  const rls = config.rls;
  if (rls === undefined) return undefined;
  const baseDir = dirname(resolve(file));
  loadRlsConfigs(rls, baseDir);
  return {
    config,
    rls,
    alone: config.routes.length === 0,
    async start(store, port) {
      const { startRls } = await import('../decisions/rls/index.js');
      const service = await startRls(rls, { store, baseDir, logger: stderrLogger, ...(port !== undefined ? { port } : {}) });
      process.on('SIGHUP', () => {
        try {
          service.reload();
          stderrLogger.info('rls config reloaded');
        } catch (err) {
          stderrLogger.error('rls config reload refused; keeping the running config', { error: (err as Error).message });
        }
      });
      return service;
    },
  };
}

/** Run the service alone (no routes): its own store, stopped on SIGTERM/SIGINT. */
export async function serveRlsAlone(plan: RlsPlan, port?: number): Promise<Rls> {
  const store = storeOf(plan.config, (e) => {
    const h = summarizeHealthEvent(e);
    stderrLogger[h.level](h.msg, h.fields);
  });
  let rls: Rls;
  try {
    rls = await plan.start(store, port);
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  const stop = (sig: string) => {
    stderrLogger.info(`${sig}: finishing in-flight calls, then exiting`);
    void rls
      .close()
      .then(() => store.close())
      .finally(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return rls;
}
